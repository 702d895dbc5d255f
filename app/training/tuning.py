"""Choose the hybrid's λ and blend weights on a validation split, then refit on everything.

Warm validation: per user, the last 20% of interactions by time (``split.time_split``),
the rule the evaluation's warm test follows, same-timestamp steps kept whole. The score is
linear in its parts, so every part is computed once for the validation users and the blend
search only re-adds dense matrices:

1. EASE λ and history decay: a small grid, EASE alone. Then the transition kernel and the
   next-items regression's λ, each candidate judged at its best weight beside EASE.
2. Cold start: only the demographic part and popularity reach a user without history. Like
   the evaluation's cold test, 10% of the users are drawn (``split.cold_user_split``) and
   all their interactions hidden from the fit; the demographic model (ridge or token
   lift, ``demographic.py``), its strength and the demographic/popularity ratio are chosen
   on predicting everything those users did.
3. Warm blend: coordinate search over the weights of content, transitions, the next-items
   regression and the cold-start prior (EASE anchored at 1), on a log grid scaled to each
   part's magnitude, then Optuna (TPE) refining that point (``blend_search``).

Every step stops at the time budget and keeps the best found so far.
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
    fit_sequential,
    fit_transition_matrix,
    mean_token_weights,
    recency_weights,
)
from app.training.metrics import ranking_metrics, top_k_excluding
from app.training.popularity import PopularityModel
from app.training.split import (
    COLD_USER_SHARE,
    WARM_TEST_SHARE,
    HoldoutSplit,
    cold_user_split,
    time_split,
)
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
# (window, distance decay): adjacent steps only, or a long window where the order of the
# last ~20 items still counts (better on ml-100k, whose users rate in long sessions).
TRANSITION_KERNELS = ((5, 0.5), (20, 0.9))
# Next-items regression λ: its Gram matrix grows with the number of sequence cuts.
SEQ_L2_GRID = (1.0, 10.0)


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


class _Validation:
    """Validation users with their fixed inputs; scores a candidate score matrix."""

    def __init__(self, split: HoldoutSplit, users: np.ndarray, history_max: int) -> None:
        seen = split.train.histories(max_items=len(split.train.item_index))
        all_histories = split.train.histories(history_max)
        all_tokens = split.train.user_token_lists()
        self.histories = [all_histories[u] for u in users]
        self.tokens = [all_tokens[u] for u in users]
        self.seen = [seen[u] for u in users]
        self.targets = [split.targets[u] for u in users]
        self.evaluations = 0

    def ndcg(self, scores: np.ndarray) -> float:
        self.evaluations += 1
        top = top_k_excluding(scores.copy(), self.seen, K)
        return ranking_metrics(top, self.targets, K)[f"ndcg@{K}"]


def train_hybrid(
    data: TrainingData,
    base: HybridParams | None = None,
    *,
    time_budget_seconds: float = 120.0,
    max_validation_users: int = 3000,
    seed: int = 0,
) -> tuple[HybridRecommender, TuningReport]:
    """Tune on a validation split within the budget, then fit on all of ``data``."""
    report = tune_hybrid(
        data,
        base,
        time_budget_seconds=time_budget_seconds,
        max_validation_users=max_validation_users,
        seed=seed,
    )
    return HybridRecommender(report.params).fit(data), report


def tune_hybrid(
    data: TrainingData,
    base: HybridParams | None = None,
    *,
    time_budget_seconds: float = 120.0,
    max_validation_users: int = 3000,
    seed: int = 0,
    l2_grid: Sequence[float] = (100.0, 300.0, 1000.0, 3000.0),
) -> TuningReport:
    """Pick ``ease_l2``, ``content_beta``, the transition kernel, the next-items λ, the cold
    start and the blend weights. The history decay is not searched: it is shared with the
    next-items regression, which would have to be refitted for each value
    (``HybridParams``)."""
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
    history = recency_weights(val.histories, data.n_items, params.history_decay)
    best_ndcg, best_ease = -1.0, np.empty(0)
    for l2 in l2_grid:
        ease_weights = fit_ease(interactions, l2)
        ndcg = val.ndcg(history @ ease_weights)
        if ndcg > best_ndcg:
            best_ndcg, best_ease = ndcg, ease_weights
            params = replace(params, ease_l2=l2)
        if time.monotonic() > deadline:
            break

    recent = recency_weights(
        [h[-params.trans_last :] for h in val.histories], data.n_items, params.trans_decay
    )
    sequences = fit_data.histories(max_items=len(fit_data.item_index))
    ease_part = np.asarray(history @ best_ease)
    params, trans_part = _best_variant(
        [replace(params, trans_window=w, trans_distance_decay=d) for w, d in TRANSITION_KERNELS],
        lambda p: np.asarray(recent @ fit_transition_matrix(sequences, data.n_items, p)),
        ease_part,
        val,
        deadline,
    )
    params, seq_part = _best_variant(
        [replace(params, seq_l2=l2) for l2 in SEQ_L2_GRID],
        lambda p: np.asarray(history @ fit_sequential(sequences, data.n_items, p)),
        ease_part,
        val,
        deadline,
    )

    # Step 2: cold start on a draw of users whose interactions are all hidden.
    cold = _tune_cold(data, params, seed, deadline, popularity_ndcg, max_validation_users)
    params = replace(params, demo_model=cold.model, demo_strength=cold.strength)
    demographic = fit_token_items(cold.model, cold.strength, fit_data.user_tokens, interactions)
    demo_scores = np.asarray(mean_token_weights(val.tokens, data.n_tokens) @ demographic)
    prior = cold.demo_share * demo_scores + (1 - cold.demo_share) * pop_scores

    # Step 3: warm blend, EASE anchored at weight 1.
    parts = {
        "ease": ease_part,
        "trans": trans_part,
        "seq": seq_part,
        "prior": prior,
    }
    if fit_data.item_tokens.nnz:
        parts["content"] = np.asarray(history @ content_similarity(fit_data.item_tokens))
    start, coordinate_ndcg = coordinate_search(parts, val.ndcg, deadline)
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


def _best_variant(
    candidates: Sequence[HybridParams],
    part_of: Callable[[HybridParams], np.ndarray],
    anchor: np.ndarray,
    val: _Validation,
    deadline: float,
) -> tuple[HybridParams, np.ndarray]:
    """Among ``candidates`` (params differing in one part's hyperparameters), the one whose
    validation part, at its best weight beside ``anchor``, scores highest; returned with
    that part. Stops trying candidates at the deadline."""
    scale = float(np.mean(np.abs(anchor).max(axis=1))) or 1.0
    best_ndcg, best, best_part = -1.0, candidates[0], np.empty(0)
    for candidate in candidates:
        part = part_of(candidate)
        part_scale = float(np.mean(np.abs(part).max(axis=1))) or 1.0
        ndcg = max(
            val.ndcg(anchor + factor * scale / part_scale * part) for factor in WEIGHT_FACTORS
        )
        if ndcg > best_ndcg:
            best_ndcg, best, best_part = ndcg, candidate, part
        if time.monotonic() > deadline:
            break
    return best, best_part


@dataclass(frozen=True)
class _ColdChoice:
    model: DemographicModel
    strength: float
    demo_share: float
    ndcg: float
    popularity_ndcg: float


def _tune_cold(
    data: TrainingData,
    params: HybridParams,
    seed: int,
    deadline: float,
    warm_popularity_ndcg: float,
    max_users: int,
) -> _ColdChoice:
    """Demographic model, strength and share for users with attributes but no history: fit
    without a random ``COLD_VALIDATION_SHARE`` of the users (at most ``max_users``), rank
    everything they interacted with. Without attributes to tune on, popularity alone (share
    0) and its warm figure stand."""
    keep = _ColdChoice(
        params.demo_model, params.demo_strength, 0.0, warm_popularity_ndcg, warm_popularity_ndcg
    )
    if not data.n_tokens or data.n_users * COLD_VALIDATION_SHARE < 1:
        return keep
    # Capped like the warm validation: 96 blends are scored over every item for these users.
    split = cold_user_split(data, COLD_VALIDATION_SHARE, seed=seed, max_users=max_users)
    fit, users = split.train, split.users_with_targets()
    val = _Validation(split, users, params.history_max)
    if not any(len(t) for t in val.tokens):
        return keep
    popularity = PopularityModel(params.popularity_half_life_days).fit(fit).prior()
    pop_scores = np.tile(popularity.astype(np.float64), (len(users), 1))
    popularity_ndcg = val.ndcg(pop_scores)
    best = replace(keep, ndcg=popularity_ndcg, popularity_ndcg=popularity_ndcg)
    tokens = mean_token_weights(val.tokens, data.n_tokens)
    interactions = fit.interaction_matrix()
    for model, strength in DEMOGRAPHIC_CANDIDATES:
        weights = fit_token_items(model, strength, fit.user_tokens, interactions)
        demo_scores = np.asarray(tokens @ weights)
        for share in COLD_DEMO_SHARES:
            ndcg = val.ndcg(share * demo_scores + (1 - share) * pop_scores)
            if ndcg > best.ndcg + 1e-6:
                best = _ColdChoice(model, strength, share, ndcg, popularity_ndcg)
        if time.monotonic() > deadline:
            break
    return best
