"""Decide the repeat model's parameters on a validation split carved from train.

Per user, the last ``VALIDATION_SHARE`` of their interactions (whole baskets, by time, the
warm split's rule) are held out, and every distinct held-out item is relevant, rebought or
not (a repeat-inclusive protocol: nothing is excluded from ranking). First the repeat score
is chosen (half-life, quantity weighting, propensity power, due weight) by the NDCG@10 of the
users' best rebuys alone, and the learned scorer, trained one window earlier, replaces it
when it ranks better; then the exploration weight, by the NDCG@10 of the blend with the
exploration list. The exploration list on validation is the popularity order of the items
the user never had: the served model's own unseen recommendations would need a second
training of it on the validation part. ``None`` (repeats off) competes with every weight,
so data where nobody rebuys (film ratings) ends with repeats off.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from app.training.repeat import (
    Purchases,
    RepeatParams,
    held_out,
    pair_keys,
    pair_scores,
    pair_stats,
    ranked_pairs,
)
from app.training.repeat_learned import fit_repurchase_classifier, learned_pair_scores

K = 10
VALIDATION_SHARE = 0.2
MAX_VALIDATION_USERS = 5000
VALIDATION_PREFIX = "validation_ndcg@10_repeat_inclusive"
HALF_LIVES_DAYS: tuple[float | None, ...] = (None, 365.0, 120.0, 45.0, 15.0)
PROPENSITY_POWERS = (0.0, 0.5, 1.0)
DUE_WEIGHTS = (0.0, 0.5, 1.0)
EXPLORATION_WEIGHTS: tuple[float | None, ...] = (
    *(0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.0, 5.0),
    None,
)


@dataclass(frozen=True)
class RepeatTuning:
    """Validation NDCG@10 (repeat-inclusive) of the chosen blend and of its parts."""

    users: int
    blend_ndcg: float
    repeats_only_ndcg: float
    personal_frequency_ndcg: float
    frequency_scorer_ndcg: float
    learned_scorer_ndcg: float | None  # None: too few rebuys to learn from
    exploration_only_ndcg: float

    def as_metrics(self) -> dict[str, float]:
        prefix = VALIDATION_PREFIX  # short for the lines below
        metrics = {
            f"{prefix}_blend": self.blend_ndcg,
            f"{prefix}_repeats_only": self.repeats_only_ndcg,
            f"{prefix}_personal_frequency": self.personal_frequency_ndcg,
            f"{prefix}_frequency_scorer": self.frequency_scorer_ndcg,
            f"{prefix}_exploration_only": self.exploration_only_ndcg,
        }
        if self.learned_scorer_ndcg is not None:
            metrics[f"{prefix}_learned_scorer"] = self.learned_scorer_ndcg
        return metrics


class _Validation:
    """The split, its relevant pairs and the users scored."""

    def __init__(self, purchases: Purchases, seed: int) -> None:
        held = held_out(purchases, VALIDATION_SHARE)
        self.train = purchases.take(~held)
        n_items = purchases.n_items
        self.n_items = n_items
        self.truth = pair_keys(purchases.take(held))
        truth_users = self.truth // n_items
        self.truth_count = np.bincount(truth_users, minlength=purchases.n_users)
        with_train = np.bincount(self.train.user, minlength=purchases.n_users) > 0
        users = np.flatnonzero(with_train & (self.truth_count > 0))
        if len(users) > MAX_VALIDATION_USERS:
            users = np.sort(np.random.default_rng(seed).choice(users, MAX_VALIDATION_USERS, False))
        self.users = users
        self.scored = np.zeros(purchases.n_users, dtype=bool)
        self.scored[users] = True
        discounts = 1.0 / np.log2(np.arange(2, K + 2))
        self.discounts = discounts
        self.ideal = np.concatenate(([1.0], np.cumsum(discounts)))  # by min(|truth|, K)

    def ndcg(self, users: np.ndarray, items: np.ndarray, ranks: np.ndarray) -> float:
        """Mean NDCG@K over the scored users of lists given as (user, item, rank) rows."""
        keep = self.scored[users] & (ranks < K)
        users, items, ranks = users[keep], items[keep], ranks[keep]
        keys = users * self.n_items + items
        # Membership by binary search in the sorted truth: np.isin hashes it on every call.
        found = np.searchsorted(self.truth, keys).clip(max=max(len(self.truth) - 1, 0))
        hit = self.truth[found] == keys if len(self.truth) else np.zeros(len(keys), dtype=bool)
        dcg = np.bincount(
            users[hit], weights=self.discounts[ranks[hit]], minlength=len(self.scored)
        )
        ideal = self.ideal[np.minimum(self.truth_count[self.users], K)]
        return float(np.mean(dcg[self.users] / ideal)) if len(self.users) else 0.0


def _ranks(users: np.ndarray) -> np.ndarray:
    """0-based position of each row within its user's run (rows grouped by user)."""
    return np.arange(len(users)) - np.searchsorted(users, users, side="left")


def tune_repeat(purchases: Purchases, seed: int = 0) -> tuple[RepeatParams, RepeatTuning]:
    """The parameters scoring best on validation, and the validation figures."""
    validation = _Validation(purchases, seed)
    stats = pair_stats(validation.train)
    has_quantity = bool(np.any(purchases.quantity != 1.0))

    frequencies: dict[tuple[float | None, bool], np.ndarray] = {}

    def repeats_ndcg(params: RepeatParams) -> tuple[float, np.ndarray, np.ndarray]:
        key = (params.half_life_days, params.quantity_weighted)
        if key not in frequencies:
            frequencies[key] = stats.frequency(*key)
        scores = pair_scores(stats, params, frequencies[key])
        return (*ranked_ndcg(scores), scores)

    def ranked_ndcg(scores: np.ndarray) -> tuple[float, np.ndarray]:
        """NDCG@10 of each user's best pairs by ``scores``, and those pairs' positions."""
        kept = ranked_pairs(stats, scores, K)
        users, items = stats.user[kept], stats.item[kept]
        return validation.ndcg(users, items, _ranks(users)), kept

    # Coordinate search, one choice at a time in this order: the frequency's recency and
    # quantity weighting, then the propensity power, then the due weight.
    best = RepeatParams()
    frequency_ndcg, best_kept, best_scores = repeats_ndcg(best)
    best_ndcg = frequency_ndcg
    quantities = (False, True) if has_quantity else (False,)
    candidates: list[list[RepeatParams]] = [
        [RepeatParams(h, 0.0, 0.0, q) for h, q in itertools.product(HALF_LIVES_DAYS, quantities)],
        [RepeatParams(propensity_power=power) for power in PROPENSITY_POWERS],
        [RepeatParams(due_weight=due) for due in DUE_WEIGHTS],
    ]
    for step, options in enumerate(candidates):
        for option in options:
            params = _combine(best, option, step)
            ndcg, kept, scores = repeats_ndcg(params)
            if ndcg > best_ndcg:
                best, best_ndcg, best_kept, best_scores = params, ndcg, kept, scores
    scorer_ndcg = best_ndcg

    learned_ndcg: float | None = None
    classifier = fit_repurchase_classifier(validation.train, VALIDATION_SHARE)
    if classifier is not None:
        scores = learned_pair_scores(classifier, validation.train, stats)
        learned_ndcg, kept = ranked_ndcg(scores)
        if learned_ndcg > best_ndcg:
            best = replace(best, learned=True)
            best_ndcg, best_kept, best_scores = learned_ndcg, kept, scores

    explore_users, explore_items = _exploration(validation)
    explore_ranks = _ranks(explore_users)
    explore_ndcg = validation.ndcg(explore_users, explore_items, explore_ranks)
    repeat_users, repeat_items = stats.user[best_kept], stats.item[best_kept]
    repeat_scores = best_scores[best_kept]
    chosen: float | None = None
    chosen_ndcg = explore_ndcg
    for weight in EXPLORATION_WEIGHTS:
        if weight is None:
            continue  # repeats off: the exploration list alone, already measured
        users = np.concatenate((repeat_users, explore_users))
        items = np.concatenate((repeat_items, explore_items))
        scores = np.concatenate((repeat_scores, weight / (1.0 + explore_ranks)))
        order = np.lexsort((-scores, users))
        ndcg = validation.ndcg(users[order], items[order], _ranks(users[order]))
        if ndcg > chosen_ndcg:
            chosen, chosen_ndcg = weight, ndcg
    return replace(best, exploration_weight=chosen), RepeatTuning(
        users=len(validation.users),
        blend_ndcg=chosen_ndcg,
        repeats_only_ndcg=best_ndcg,
        personal_frequency_ndcg=frequency_ndcg,
        frequency_scorer_ndcg=scorer_ndcg,
        learned_scorer_ndcg=learned_ndcg,
        exploration_only_ndcg=explore_ndcg,
    )


def _combine(current: RepeatParams, option: RepeatParams, step: int) -> RepeatParams:
    """``current`` with the choice of coordinate ``step`` taken from ``option``."""
    if step == 0:
        return replace(
            current,
            half_life_days=option.half_life_days,
            quantity_weighted=option.quantity_weighted,
        )
    if step == 1:
        return replace(current, propensity_power=option.propensity_power)
    return replace(current, due_weight=option.due_weight)


def _exploration(validation: _Validation) -> tuple[np.ndarray, np.ndarray]:
    """Per scored user, the ``K`` most popular items (distinct train buyers) they never had,
    as (user, item) rows in rank order."""
    train = validation.train
    pairs = np.unique(train.user * validation.n_items + train.item)
    buyers = np.bincount(pairs % validation.n_items, minlength=validation.n_items)
    popular = np.lexsort((np.arange(validation.n_items), -buyers))
    bounds = np.searchsorted(pairs // validation.n_items, np.arange(train.n_users + 1))
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    owned = np.zeros(validation.n_items, dtype=bool)
    for user in validation.users:
        seen = pairs[bounds[user] : bounds[user + 1]] % validation.n_items
        owned[seen] = True
        head = popular[: K + len(seen)]
        chosen = head[~owned[head]][:K]
        owned[seen] = False
        users.append(np.full(len(chosen), user, dtype=np.int64))
        items.append(chosen)
    empty = np.empty(0, dtype=np.int64)
    return np.concatenate([empty, *users]), np.concatenate([empty, *items])
