"""Choose the hybrid's structure, λs and blend weights on a validation split, then refit on
everything.

Warm validation: per user, the last 20% of interactions by time (``time_split``), a basket
(interactions sharing a timestamp) held out whole. The score is linear in its parts, so every
part is computed once for the validation users and a candidate only re-adds dense matrices.
Each structural choice is judged at its best weight beside the part it will be blended with:

1. EASE λ (EASE alone, the default history form);
2. the transitions: kernel (window in steps, distance decay, smoothing) and which newest
   items they read with which decay, beside EASE;
3. the EASE term's history form: decay (1 = every item alike), window (the whole stored
   history, or only the items carrying 95% of the weight) and normalisation (weights summing
   to 1, or scores divided by their per-user peak), beside the transitions; then the
   transitions once more beside the chosen form;
4. the next-items regression: its own decay and window (the EASE term's, which lets the graph
   fold both into one matrix, or a recency-weighted window), whether its samples are cut only
   between steps, and its λ, beside the two;
5. cold start: only the demographic part and popularity reach a user without history. Like
   the evaluation's cold test, 10% of the users are drawn and all their interactions hidden
   from the fit; the demographic model (ridge or token lift, ``demographic.py``), its
   strength and the demographic/popularity ratio are chosen on predicting everything those
   users did;
6. warm blend: coordinate search over the weights of content, transitions, the next-items
   regression (0 drops it) and the cold-start prior (EASE anchored at 1), on a log grid
   scaled to each part's magnitude, then Optuna (TPE) refining that point (``blend_search``).

Every step stops at the time budget (``scaled_budget``: longer for more data) and keeps the
best found so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from app.training.blend_search import (
    WEIGHT_FACTORS,
    coordinate_search,
    refine_with_optuna,
)
from app.training.content import content_similarity
from app.training.demographic import DemographicModel, fit_token_items
from app.training.ease import check_dense_size, fit_ease
from app.training.hybrid import (
    HybridParams,
    HybridRecommender,
    TermNorm,
    fit_sequential,
    fit_transition_matrix,
    mean_token_weights,
    normalised,
    recency_weights,
    weighted_window,
)
from app.training.metrics import top_k
from app.training.popularity import PopularityModel
from app.training.split import (
    COLD_USER_SHARE,
    WARM_TEST_SHARE,
    HoldoutSplit,
    cold_validation_folds,
    time_split,
)
from app.training.statistics import InteractionStatistics
from app.training.types import TrainingData

# Validation follows the product's protocol (``split.py``), carved from the training data.
VALIDATION_SHARE = WARM_TEST_SHARE
COLD_VALIDATION_SHARE = COLD_USER_SHARE
K = 10
# The lift's best shares sit around 0.15-0.4 (log lift against log popularity scaled to
# [0, 1]), the ridge's higher: the grid is finer where the lift needs it.
COLD_DEMO_SHARES = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 0.9, 0.97, 1.0)
DEMO_L2_GRID = (3.0, 10.0, 30.0, 100.0)
# Pseudo-users pulling a token's item shares towards everyone's.
LIFT_SHRINKAGE_GRID = (3.0, 10.0, 30.0, 100.0)
DEMOGRAPHIC_CANDIDATES: tuple[tuple[DemographicModel, float], ...] = (
    *(("ridge", l2) for l2 in DEMO_L2_GRID),
    *(("lift", shrinkage) for shrinkage in LIFT_SHRINKAGE_GRID),
)
# (window in steps, distance decay, smoothing, same-step weight): adjacent steps only, or a
# long window where the order of the last ~20 steps still counts (users who rate or buy many
# items in a row), also as plain row-normalised counts; with or without the items of one step
# linked to each other (both ways: chosen together, in no order).
TransitionKernel = tuple[int, float, float, float]
TRANSITION_KERNELS: tuple[TransitionKernel, ...] = (
    (5, 0.5, 5.0, 0.0),
    (20, 0.9, 5.0, 0.0),
    (20, 1.0, 0.0, 0.0),
    (5, 0.5, 5.0, 1.0),
    (20, 0.9, 5.0, 1.0),
)
# (newest items read, recency decay) of the transitions term.
TRANSITION_READS = ((3, 0.5), (10, 0.8), (20, 0.8), (20, 0.9))
# The EASE term's recency decays; each is tried over the whole stored history and over the
# items carrying all but NEGLIGIBLE_WEIGHT of it, decay 1 also over the newest 100 and 200.
EASE_DECAYS = (1.0, 0.98, 0.95, 0.9)
UNWEIGHTED_WINDOWS = (100, 200)
TERM_NORMS: tuple[TermNorm, ...] = ("sum", "max")
# Weights a structural candidate is tried at, relative to the part it is blended with: every
# other factor of the blend search's grid, which refines the chosen one's weight afterwards.
VARIANT_FACTORS = WEIGHT_FACTORS[::2]
# Next-items regression λ: its Gram matrix grows with the number of sequence cuts.
SEQ_L2_GRID = (1.0, 10.0)
# The regression's own history form when it does not share the EASE term's.
SEQ_OWN_FORM = (0.95, 59)
# Tuning time: this long up to BUDGET_BASE_ROWS interactions, growing with the square root
# of the data size beyond, at most BUDGET_MAX_SECONDS (the build's time limits).
BUDGET_BASE_SECONDS = 120.0
BUDGET_BASE_ROWS = 200_000
BUDGET_MAX_SECONDS = 240.0


@dataclass(frozen=True)
class TuningReport:
    """What tuning chose and how it scored on validation (NDCG@10)."""

    params: HybridParams
    warm_ndcg: float
    cold_ndcg: float
    popularity_ndcg: float
    cold_popularity_ndcg: float
    evaluations: int
    seconds: float
    budget_exhausted: bool
    optuna_trials: int = 0  # blend trials after the coordinate search
    coordinate_ndcg: float = 0.0  # warm validation NDCG@10 before Optuna refined the blend


def scaled_budget(n_interactions: int) -> float:
    """The tuning's time budget for a dataset of ``n_interactions``."""
    growth = max(1.0, n_interactions / BUDGET_BASE_ROWS) ** 0.5
    return min(BUDGET_MAX_SECONDS, BUDGET_BASE_SECONDS * growth)


class _Validation:
    """Validation users with their fixed inputs; scores a candidate score matrix.

    NDCG@K as ``metrics.ranking_metrics`` defines it, vectorised over users: tuning scores
    thousands of candidate blends, and a per-user loop would be most of its time."""

    def __init__(self, split: HoldoutSplit, users: np.ndarray, history_max: int) -> None:
        seen = split.train.histories(max_items=len(split.train.item_index))
        all_histories = split.train.histories(history_max)
        all_tokens = split.train.user_token_lists()
        n_items = split.train.n_items
        self.histories = [all_histories[u] for u in users]
        self.tokens = [all_tokens[u] for u in users]
        self.seen = [seen[u] for u in users]
        self.targets = [split.targets[u] for u in users]
        self.evaluations = 0
        self._seen_at = _cells(self.seen)
        self._relevant = np.zeros((len(users), n_items), dtype=bool)
        self._relevant[_cells(self.targets)] = True
        discounts = 1.0 / np.log2(np.arange(2, K + 2))
        ideal_hits = np.minimum([len(t) for t in self.targets], K)
        self._discounts = discounts
        self._ideal = np.concatenate(([1.0], np.cumsum(discounts)))[ideal_hits]

    def history_part(
        self, matrix: np.ndarray, items: int, decay: float, norm: TermNorm = "sum"
    ) -> np.ndarray:
        """A history term's scores: the newest ``items`` weighted ``decay ** age``."""
        newest = [h[len(h) - min(items, len(h)) :] for h in self.histories]
        return normalised(recency_weights(newest, matrix.shape[0], decay) @ matrix, norm)

    def ndcg(self, scores: np.ndarray) -> float:
        self.evaluations += 1
        scores = scores.copy()
        scores[self._seen_at] = -np.inf
        top = top_k(scores, K)
        hits = np.take_along_axis(self._relevant, top, axis=1)
        return float(np.mean((hits @ self._discounts[: top.shape[1]]) / self._ideal))


def _cells(per_user: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) indices of each user's items, for fancy indexing."""
    rows = np.repeat(np.arange(len(per_user)), [len(items) for items in per_user])
    return rows, np.concatenate([*per_user, np.empty(0, dtype=np.int64)]).astype(np.int64)


def train_hybrid(
    data: TrainingData,
    base: HybridParams | None = None,
    *,
    time_budget_seconds: float = 120.0,
    max_validation_users: int = 3000,
    seed: int = 0,
    statistics: InteractionStatistics | None = None,
) -> tuple[HybridRecommender, TuningReport]:
    """Tune on a validation split within the budget (in this process), then fit on all of
    ``data``, its counts by ``statistics`` when given."""
    report = tune_hybrid(
        data,
        base,
        time_budget_seconds=time_budget_seconds,
        max_validation_users=max_validation_users,
        seed=seed,
    )
    return HybridRecommender(report.params).fit(data, statistics), report


def tune_hybrid(
    data: TrainingData,
    base: HybridParams | None = None,
    *,
    time_budget_seconds: float = 120.0,
    max_validation_users: int = 3000,
    seed: int = 0,
    l2_grid: Sequence[float] = (100.0, 300.0, 1000.0, 3000.0),
) -> TuningReport:
    """Pick the hybrid's structure (each history term's decay, window and normalisation, the
    transition kernel, whether the next-items regression shares the EASE term's weights),
    ``ease_l2``, ``content_beta``, the next-items λ, the cold start and the blend weights."""
    started = time.monotonic()
    deadline = started + time_budget_seconds
    params = base or HybridParams()
    check_dense_size(data.n_items, params.max_dense_items)
    split = time_split(data, VALIDATION_SHARE)
    fit_data = split.train
    eligible = np.flatnonzero(
        [
            len(t) > 0 and len(h) > 0
            for t, h in zip(split.targets, fit_data.histories(1), strict=True)
        ]
    )
    if len(eligible) == 0:
        raise ValueError("no user has both fit and validation interactions: cannot tune")
    rng = np.random.default_rng(seed)
    users = np.sort(rng.permutation(eligible)[:max_validation_users])
    val = _Validation(split, users, params.history_max)
    interactions = fit_data.interaction_matrix()

    popularity = PopularityModel(params.popularity_half_life_days).fit(fit_data).prior()
    pop_scores = np.tile(popularity.astype(np.float64), (len(users), 1))
    popularity_ndcg = val.ndcg(pop_scores)

    # Step 1: λ, EASE alone.
    best_ndcg, ease = -1.0, np.empty(0)
    for l2 in l2_grid:
        ease_weights = fit_ease(interactions, l2)
        ndcg = val.ndcg(val.history_part(ease_weights, params.ease_items, params.ease_decay))
        if ndcg > best_ndcg:
            best_ndcg, ease = ndcg, ease_weights
            params = replace(params, ease_l2=l2)
        if time.monotonic() > deadline:
            break

    def ease_part(p: HybridParams) -> np.ndarray:
        return val.history_part(ease, p.ease_items, p.ease_decay, p.ease_norm)

    # Step 2: transitions beside EASE; step 3: EASE's history form beside them, then the
    # transitions again beside that form.
    sequences = fit_data.histories_with_steps(max_items=len(fit_data.item_index))
    kernels: dict[TransitionKernel, np.ndarray] = {}

    def trans_part(p: HybridParams) -> np.ndarray:
        kernel = (p.trans_window, p.trans_distance_decay, p.trans_smoothing, p.trans_same_step)
        if kernel not in kernels:
            kernels[kernel] = fit_transition_matrix(sequences, data.n_items, p)
        return val.history_part(kernels[kernel], p.trans_items, p.trans_decay)

    def trans_variants(p: HybridParams, kernels: Sequence[TransitionKernel]) -> list[HybridParams]:
        return [
            replace(_with_kernel(p, kernel), trans_last=last, trans_decay=decay)
            for kernel in kernels
            for last, decay in TRANSITION_READS
        ]

    ease_now = ease_part(params)
    params, trans_raw, w_trans = _best_variant(
        trans_variants(params, TRANSITION_KERNELS), trans_part, ease_now, val, deadline
    )
    params, ease_now, _ = _best_variant(
        _ease_forms(params), ease_part, w_trans * trans_raw, val, deadline
    )
    chosen_kernel = (
        params.trans_window,
        params.trans_distance_decay,
        params.trans_smoothing,
        params.trans_same_step,
    )
    params, trans_raw, w_trans = _best_variant(
        trans_variants(params, [chosen_kernel]), trans_part, ease_now, val, deadline
    )

    # Step 4: the next-items regression beside both, with the EASE term's form or its own,
    # its samples cut between steps or anywhere; then its λ.
    own_decay, own_window = SEQ_OWN_FORM
    forms = {(params.ease_decay, params.ease_window), (own_decay, own_window)}
    seq_candidates = [
        replace(params, seq_decay=decay, seq_window=window, seq_whole_steps=whole, w_seq=1.0)
        for decay, window in sorted(forms, reverse=True)
        for whole in (True, False)
    ]
    seq_fits: dict[tuple[float, float, bool], np.ndarray] = {}

    def seq_part(p: HybridParams) -> np.ndarray:
        key = (p.seq_decay, p.seq_l2, p.seq_whole_steps)
        if key not in seq_fits:
            seq_fits[key] = fit_sequential(sequences, data.n_items, p)
        return val.history_part(seq_fits[key], p.seq_items, p.seq_decay)

    seq_anchor = ease_now + w_trans * trans_raw
    chosen, _, w_seq = _best_variant(seq_candidates, seq_part, seq_anchor, val, deadline)
    chosen, _, w_seq = _best_variant(
        [replace(chosen, seq_l2=l2) for l2 in SEQ_L2_GRID], seq_part, seq_anchor, val, deadline
    )
    params = replace(
        params,
        seq_decay=chosen.seq_decay,
        seq_window=chosen.seq_window,
        seq_l2=chosen.seq_l2,
        seq_whole_steps=chosen.seq_whole_steps,
    )

    # Step 5: cold start on a draw of users whose interactions are all hidden.
    cold = _tune_cold(data, params, seed, deadline, popularity_ndcg, max_validation_users)
    params = replace(params, demo_model=cold.model, demo_strength=cold.strength)
    demographic = fit_token_items(cold.model, cold.strength, fit_data.user_tokens, interactions)
    demo_scores = np.asarray(mean_token_weights(val.tokens, data.n_tokens) @ demographic)
    prior = cold.demo_share * demo_scores + (1 - cold.demo_share) * pop_scores

    # Step 6: warm blend, EASE anchored at weight 1.
    parts = {
        "ease": ease_part(params),
        "trans": trans_part(params),
        "seq": seq_part(replace(params, w_seq=1.0)),
        "prior": prior,
    }
    if fit_data.item_tokens.nnz:
        # Content shares the EASE term's weights and its per-user peak (the peak of EASE
        # alone: with a small β, as tuning finds, the folded term's peak barely moves).
        content = val.history_part(
            content_similarity(fit_data.item_tokens), params.ease_items, params.ease_decay
        )
        if params.ease_norm == "max":
            raw = val.history_part(ease, params.ease_items, params.ease_decay)
            content = content / np.maximum(np.abs(raw).max(axis=1, keepdims=True), 1e-12)
        parts["content"] = content
    # The search starts where steps 2-4 left the weights; the budget may end it there.
    initial = {"trans": w_trans, "seq": w_seq}
    start, coordinate_ndcg = coordinate_search(parts, val.ndcg, deadline, initial)
    weights, warm_ndcg, trials = refine_with_optuna(
        parts, start, coordinate_ndcg, val.ndcg, deadline, seed=seed
    )
    params = replace(
        params,
        w_ease=1.0,
        content_beta=weights.get("content", 0.0),
        w_trans=weights["trans"],
        w_seq=weights["seq"],
        w_demo=weights["prior"] * cold.demo_share,
        w_pop=weights["prior"] * (1 - cold.demo_share),
    )
    return TuningReport(
        params=params,
        warm_ndcg=warm_ndcg,
        cold_ndcg=cold.ndcg,
        popularity_ndcg=popularity_ndcg,
        cold_popularity_ndcg=cold.popularity_ndcg,
        evaluations=val.evaluations,
        seconds=time.monotonic() - started,
        budget_exhausted=time.monotonic() > deadline,
        optuna_trials=trials,
        coordinate_ndcg=coordinate_ndcg,
    )


def _with_kernel(params: HybridParams, kernel: TransitionKernel) -> HybridParams:
    window, distance_decay, smoothing, same_step = kernel
    return replace(
        params,
        trans_window=window,
        trans_distance_decay=distance_decay,
        trans_smoothing=smoothing,
        trans_same_step=same_step,
    )


def _ease_forms(params: HybridParams) -> list[HybridParams]:
    """The EASE term's history forms: each decay over the whole stored history and over its
    NEGLIGIBLE_WEIGHT cut, decay 1 also over UNWEIGHTED_WINDOWS; each with each norm."""
    limit = params.history_max
    shapes = {(decay, window) for decay in EASE_DECAYS for window in (limit,)}
    shapes |= {(decay, weighted_window(limit, decay)) for decay in EASE_DECAYS}
    shapes |= {(1.0, min(window, limit)) for window in UNWEIGHTED_WINDOWS}
    return [
        replace(params, ease_decay=decay, ease_window=window, ease_norm=norm)
        for decay, window in sorted(shapes, reverse=True)
        for norm in TERM_NORMS
    ]


def _best_variant(
    candidates: Sequence[HybridParams],
    part_of: Callable[[HybridParams], np.ndarray],
    anchor: np.ndarray,
    val: _Validation,
    deadline: float,
) -> tuple[HybridParams, np.ndarray, float]:
    """Among ``candidates`` (params differing in one part's hyperparameters), the one whose
    validation part, at its best weight beside ``anchor``, scores highest; returned with
    that part and that weight. Stops trying candidates at the deadline."""
    scale = float(np.mean(np.abs(anchor).max(axis=1))) or 1.0
    best_ndcg, best, best_part, best_weight = -1.0, candidates[0], np.empty(0), 0.0
    for candidate in candidates:
        part = part_of(candidate)
        part_scale = float(np.mean(np.abs(part).max(axis=1))) or 1.0
        for factor in VARIANT_FACTORS:
            weight = factor * scale / part_scale
            ndcg = val.ndcg(anchor + weight * part)
            if ndcg > best_ndcg:
                best_ndcg, best, best_part, best_weight = ndcg, candidate, part, weight
        if time.monotonic() > deadline:
            break
    return best, best_part, best_weight


@dataclass(frozen=True)
class _ColdChoice:
    model: DemographicModel
    strength: float
    demo_share: float
    ndcg: float
    popularity_ndcg: float


class _ColdFold:
    """One cold validation fold: its users' fixed inputs and the popularity they would get."""

    def __init__(self, split: HoldoutSplit, params: HybridParams) -> None:
        self.fit = split.train
        users = split.users_with_targets()
        self._validation = _Validation(split, users, params.history_max)
        self.has_tokens = any(len(t) for t in self._validation.tokens)
        popularity = PopularityModel(params.popularity_half_life_days).fit(self.fit).prior()
        self.pop_scores = np.tile(popularity.astype(np.float64), (len(users), 1))
        self.popularity_ndcg = self._validation.ndcg(self.pop_scores)
        self._tokens = mean_token_weights(self._validation.tokens, self.fit.n_tokens)
        self._interactions = self.fit.interaction_matrix()

    def demographic_scores(self, model: DemographicModel, strength: float) -> np.ndarray:
        weights = fit_token_items(model, strength, self.fit.user_tokens, self._interactions)
        return np.asarray(self._tokens @ weights)

    def ndcg(self, scores: np.ndarray) -> float:
        return self._validation.ndcg(scores)


def _tune_cold(
    data: TrainingData,
    params: HybridParams,
    seed: int,
    deadline: float,
    warm_popularity_ndcg: float,
    max_users: int,
) -> _ColdChoice:
    """Demographic model, strength and share for users with attributes but no history: in
    each of ``cold_validation_folds`` (disjoint draws of ``COLD_VALIDATION_SHARE`` of the
    users, at most ``max_users`` each) fit without the fold's users and rank everything they
    interacted with; the choice is the best mean NDCG over the folds. Without attributes to
    tune on, popularity alone (share 0) and its warm figure stand."""
    keep = _ColdChoice(
        params.demo_model, params.demo_strength, 0.0, warm_popularity_ndcg, warm_popularity_ndcg
    )
    if not data.n_tokens or data.n_users * COLD_VALIDATION_SHARE < 1:
        return keep
    # Each fold capped like the warm validation: 96 blends are scored over every item.
    splits = cold_validation_folds(data, COLD_VALIDATION_SHARE, seed=seed, max_users=max_users)
    folds = [fold for fold in (_ColdFold(split, params) for split in splits) if fold.has_tokens]
    if not folds:
        return keep
    popularity_ndcg = float(np.mean([fold.popularity_ndcg for fold in folds]))
    best = replace(keep, ndcg=popularity_ndcg, popularity_ndcg=popularity_ndcg)
    for model, strength in DEMOGRAPHIC_CANDIDATES:
        demo_scores = [fold.demographic_scores(model, strength) for fold in folds]
        for share in COLD_DEMO_SHARES:
            ndcg = float(
                np.mean(
                    [
                        fold.ndcg(share * demo + (1 - share) * fold.pop_scores)
                        for fold, demo in zip(folds, demo_scores, strict=True)
                    ]
                )
            )
            if ndcg > best.ndcg + 1e-6:
                best = _ColdChoice(model, strength, share, ndcg, popularity_ndcg)
        if time.monotonic() > deadline:
            break
    return best
