"""The repeat model: which of the items a user bought before they will buy again.

Shoppers of consumables rebuy. Each (user, item) pair the user bought is scored from

* personal frequency, every purchase weighted by its recency: ``0.5 ** (age / half_life)``,
  the age measured from the user's own last purchase (the next basket is what is predicted,
  so data from any period reads the same), and by its quantity when the data carries one;
* the item's repurchase propensity: the smoothed share of its buyers who bought it again,
  raised to ``propensity_power`` (milk is rebought, a kettle is not);
* the item's repurchase cycle: the median interval between two purchases of it by the same
  user; a pair whose elapsed time since the last purchase nears the cycle is "due" and is
  raised by up to ``1 + due_weight``.

Or, where validation prefers it, by a learned scorer over the same signals and more
(``repeat_learned``).

Scores are normalised by the user's best, so ``1.0`` is their most likely rebuy. Everything
here is vectorised over the interaction arrays: 1.3M purchases take well under a second.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from app.data.types import ITEM_ID, TIMESTAMP, USER_ID
from app.training.split import held_out_rows

SECONDS_PER_DAY = 86_400.0
QUANTITY = "quantity"


@dataclass(frozen=True)
class RepeatParams:
    """The repeat model's choices, decided on validation (``repeat_tuning``).

    ``exploration_weight`` blends the unseen recommendations in: the exploration item at rank
    ``j`` (0-based) scores ``exploration_weight / (1 + j)`` against the repeat scores in
    ``(0, 1]``; ``None`` turns repeats off (data where nobody rebuys, such as film ratings).
    """

    half_life_days: float | None = None  # None: every purchase counts the same
    propensity_power: float = 0.0
    due_weight: float = 0.0
    quantity_weighted: bool = False
    exploration_weight: float | None = 0.0
    learned: bool = False  # scored by the learned repurchase classifier instead

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Purchases:
    """Interactions in index space, sorted by (user, timestamp): one entry per line."""

    user: np.ndarray  # int64
    item: np.ndarray  # int64
    time: np.ndarray  # int64, Unix seconds
    quantity: np.ndarray  # float64, 1.0 when the data has no quantity
    n_users: int
    n_items: int

    def take(self, keep: np.ndarray) -> Purchases:
        return Purchases(
            self.user[keep],
            self.item[keep],
            self.time[keep],
            self.quantity[keep],
            self.n_users,
            self.n_items,
        )


def purchases_from(
    interactions: pd.DataFrame, user_ids: tuple[str, ...], item_ids: tuple[str, ...]
) -> Purchases:
    """Index the interactions over the model's (sorted) user and item vocabularies; rows of
    unknown ids are left out."""
    # Hash lookups (pandas categoricals): a binary search over 1M strings takes seconds.
    u = pd.Categorical(interactions[USER_ID].astype(str), categories=list(user_ids)).codes
    i = pd.Categorical(interactions[ITEM_ID].astype(str), categories=list(item_ids)).codes
    known = (u >= 0) & (i >= 0)
    if QUANTITY in interactions:
        quantity = interactions[QUANTITY].to_numpy(dtype=np.float64)
        quantity = np.where(np.isfinite(quantity) & (quantity > 0), quantity, 1.0)
    else:
        quantity = np.ones(len(interactions))
    times = interactions[TIMESTAMP].to_numpy(dtype=np.int64)
    order = np.lexsort((times, u))
    order = order[known[order]]
    return Purchases(
        u[order].astype(np.int64),
        i[order].astype(np.int64),
        times[order],
        quantity[order],
        len(user_ids),
        len(item_ids),
    )


def held_out(purchases: Purchases, share: float) -> np.ndarray:
    """Mask of each user's newest ``share`` of purchases, by the warm split's rule (whole
    baskets: lines of one timestamp are one step)."""
    return held_out_rows(purchases.user, purchases.item, purchases.time, share)


def pair_keys(purchases: Purchases) -> np.ndarray:
    """The sorted distinct ``user * n_items + item`` keys of the purchases."""
    return np.unique(purchases.user * purchases.n_items + purchases.item)


@dataclass(frozen=True)
class PairStats:
    """Per distinct (user, item) pair, sorted by user then item: what scoring needs."""

    user: np.ndarray
    item: np.ndarray
    elapsed: np.ndarray  # seconds from the pair's last purchase to the user's last purchase
    propensity: np.ndarray  # the item's repurchase propensity, per pair
    cycle: np.ndarray  # the item's median repurchase interval (seconds), NaN when unknown
    _purchases: Purchases
    _inverse: np.ndarray  # purchase -> pair
    _age: np.ndarray  # purchase -> seconds before its user's last purchase

    @property
    def n_users(self) -> int:
        return self._purchases.n_users

    def frequency(self, half_life_days: float | None, quantity_weighted: bool) -> np.ndarray:
        weight = np.log2(1.0 + self._purchases.quantity) if quantity_weighted else 1.0
        if half_life_days is not None:
            weight = weight * np.exp2(-self._age / (half_life_days * SECONDS_PER_DAY))
        weights = np.broadcast_to(weight, self._inverse.shape).astype(np.float64)
        return np.bincount(self._inverse, weights=weights, minlength=len(self.user))


def pair_stats(purchases: Purchases) -> PairStats:
    p = purchases
    key = p.user * p.n_items + p.item
    keys, inverse = np.unique(key, return_inverse=True)
    pair_user, pair_item = np.divmod(keys, p.n_items)
    # Rows are sorted by (user, time): a user's last purchase ends their run.
    user_ends = np.searchsorted(p.user, np.arange(p.n_users), side="right") - 1
    last_of_user = p.time[user_ends.clip(0)]
    age = (last_of_user[p.user] - p.time).astype(np.float64)
    # Purchase occasions per pair: distinct timestamps (lines of one basket are one occasion).
    order = np.lexsort((p.time, inverse))
    pair_sorted, time_sorted = inverse[order], p.time[order]
    pair_ends = np.searchsorted(pair_sorted, np.arange(len(keys)), side="right") - 1
    elapsed = (last_of_user[pair_user] - time_sorted[pair_ends]).astype(np.float64)
    new_occasion = np.ones(len(order), dtype=bool)
    new_occasion[1:] = (pair_sorted[1:] != pair_sorted[:-1]) | (time_sorted[1:] != time_sorted[:-1])
    pair_of_occasion, time_of_occasion = pair_sorted[new_occasion], time_sorted[new_occasion]
    occasions = np.bincount(pair_of_occasion, minlength=len(keys))
    buyers = np.bincount(pair_item, minlength=p.n_items)
    rebuyers = np.bincount(pair_item[occasions >= 2], minlength=p.n_items)
    propensity = (rebuyers + 1.0) / (buyers + 2.0)  # Laplace-smoothed share of rebuyers

    # Intervals between consecutive occasions of the same pair, in time order.
    same = pair_of_occasion[1:] == pair_of_occasion[:-1]
    gaps = np.diff(time_of_occasion)[same].astype(np.float64)
    gap_items = pair_item[pair_of_occasion[1:][same]]
    cycle = np.full(p.n_items, np.nan)
    if gaps.size:
        medians = pd.Series(gaps).groupby(gap_items).median()
        cycle[medians.index.to_numpy()] = medians.to_numpy()
    return PairStats(
        user=pair_user,
        item=pair_item,
        elapsed=elapsed,
        propensity=propensity[pair_item],
        cycle=cycle[pair_item],
        _purchases=p,
        _inverse=inverse,
        _age=age,
    )


def pair_scores(
    stats: PairStats, params: RepeatParams, frequency: np.ndarray | None = None
) -> np.ndarray:
    """Each pair's repeat score, normalised by its user's best (in ``(0, 1]``);
    ``frequency``: ``stats.frequency`` for these parameters, when the caller has it."""
    if frequency is None:
        frequency = stats.frequency(params.half_life_days, params.quantity_weighted)
    score = frequency
    if params.propensity_power:
        score = score * stats.propensity**params.propensity_power
    if params.due_weight:
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = stats.elapsed / stats.cycle
            closeness = np.where(ratio > 0, np.minimum(ratio, 1.0 / ratio), 0.0)
        score = score * (1.0 + params.due_weight * np.nan_to_num(closeness))
    return normalised_by_user(stats, score)


def normalised_by_user(stats: PairStats, score: np.ndarray) -> np.ndarray:
    """Pair scores divided by their user's best (pairs are sorted by user)."""
    if not score.size:
        return score
    starts = np.flatnonzero(np.r_[True, stats.user[1:] != stats.user[:-1]])
    best = np.maximum.reduceat(score, starts)
    best_of_pair = np.repeat(best, np.diff(np.r_[starts, score.size]))
    return score / np.where(best_of_pair > 0, best_of_pair, 1.0)


def ranked_pairs(stats: PairStats, scores: np.ndarray, per_user: int) -> np.ndarray:
    """Positions of the pairs each user keeps (their best ``per_user``), sorted by user, then
    score descending, then item index (pairs come sorted by user and item; the sort is
    stable)."""
    # Scores lie in [0, 1]: user + (1 - score) orders by user, then score descending, and
    # one stable float sort is several times faster than a lexsort on two keys.
    order = np.argsort(stats.user + (1.0 - scores), kind="stable")
    users = stats.user[order]
    starts = np.searchsorted(users, users, side="left")
    rank = np.arange(len(order)) - starts
    return order[rank < per_user]


def repeat_matrix(
    purchases: Purchases, params: RepeatParams, per_user: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The served form: CSR ``(indptr, items, scores)`` over users, each row the user's best
    ``per_user`` rebuys, best first."""
    stats = pair_stats(purchases)
    return served_rows(stats, pair_scores(stats, params), per_user)


def served_rows(
    stats: PairStats, scores: np.ndarray, per_user: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``repeat_matrix``'s CSR rows from any per-pair scores normalised by user."""
    kept = ranked_pairs(stats, scores, per_user)
    counts = np.bincount(stats.user[kept], minlength=stats.n_users)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return indptr, stats.item[kept].astype(np.int32), scores[kept].astype(np.float32)


def as_csr(
    indptr: np.ndarray, items: np.ndarray, scores: np.ndarray, n_items: int
) -> sp.csr_matrix:
    """``repeat_matrix``'s rows as a users x items sparse matrix (tests and evaluation)."""
    return sp.csr_matrix((scores, items, indptr), shape=(len(indptr) - 1, n_items))
