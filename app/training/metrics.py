"""Top-k ranking metrics with binary relevance: the one definition the build's tuning, the
baselines' tuning and ``recserve evaluate`` share.

* NDCG@k: DCG of the hits over the ideal DCG of ``min(|relevant|, k)`` hits;
* recall@k: hits / ``min(|relevant|, k)``, so a user with more relevant items than ``k`` can
  still reach 1;
* hit rate@k: 1 when any of the top ``k`` is relevant.

A list shorter than ``k`` simply has fewer chances.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from app.training.split import HoldoutSplit

Scorer = Callable[[list[np.ndarray], list[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class UserMetrics:
    """Per-user NDCG@k, recall@k and hit@k, parallel to the list of users scored."""

    ndcg: np.ndarray
    recall: np.ndarray
    hit: np.ndarray

    def means(self, k: int) -> dict[str, float]:
        return {
            f"ndcg@{k}": float(self.ndcg.mean()),
            f"recall@{k}": float(self.recall.mean()),
            f"hit_rate@{k}": float(self.hit.mean()),
        }


def user_metrics(
    recommended: Sequence[Sequence[Hashable]], relevant: Sequence[Collection[Hashable]], k: int
) -> UserMetrics:
    """The metrics of each ranked list (best first) against its relevant set; every user
    must have at least one relevant item."""
    if len(recommended) != len(relevant):
        raise ValueError(f"{len(recommended)} ranked lists but {len(relevant)} relevant sets")
    is_hit = np.zeros((len(relevant), k), dtype=bool)
    for row, (ranked, rel) in enumerate(zip(recommended, relevant, strict=True)):
        if not len(rel):
            raise ValueError(f"user row {row} has no relevant items")
        wanted = set(rel)
        hits = [item in wanted for item in list(ranked)[:k]]
        is_hit[row, : len(hits)] = hits
    return _from_hits(is_hit, np.array([len(set(r)) for r in relevant]), k)


def _from_hits(is_hit: np.ndarray, n_relevant: np.ndarray, k: int) -> UserMetrics:
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    hits = is_hit.sum(axis=1)
    return UserMetrics(
        ndcg=(is_hit * discounts).sum(axis=1) / ideal,
        recall=hits / np.minimum(n_relevant, k),
        hit=(hits > 0).astype(np.float64),
    )


def ranking_metrics(top: np.ndarray, relevant: Sequence[np.ndarray], k: int) -> dict[str, float]:
    """Mean NDCG@k, recall@k and hit rate@k of ranked item indices ``top`` (users x >= k;
    negative entries pad short lists). Users with no relevant items are not counted."""
    counted = [row for row, rel in enumerate(relevant) if len(rel)]
    if not counted:
        raise ValueError("no user has relevant items: cannot compute ranking metrics")
    is_hit = np.stack([np.isin(top[row, :k], relevant[row]) for row in counted])
    n_relevant = np.array([len(np.unique(relevant[row])) for row in counted])
    return _from_hits(is_hit, n_relevant, k).means(k)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest scores per row, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def top_k_excluding(scores: np.ndarray, exclude: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Top-k per row after removing each row's ``exclude`` items (modifies ``scores``)."""
    rows = np.repeat(np.arange(len(exclude)), [len(e) for e in exclude])
    scores[rows, np.concatenate([*exclude, np.empty(0, dtype=np.int64)])] = -np.inf
    return top_k(scores, k)


def evaluate_scorer(
    scorer: Scorer,
    split: HoldoutSplit,
    *,
    history_max: int,
    k: int = 10,
    users: np.ndarray | None = None,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Score ``users`` (default: all with targets) from their train histories and tokens,
    rank all items except everything they interacted with in train, and compare with the
    held-out targets."""
    if users is None:
        users = split.users_with_targets()
    seen = split.train.histories(max_items=len(split.train.item_index))
    histories = split.train.histories(history_max)
    tokens = split.train.user_token_lists()
    tops = []
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = scorer([histories[u] for u in batch], [tokens[u] for u in batch])
        tops.append(top_k_excluding(scores, [seen[u] for u in batch], k))
    return ranking_metrics(np.concatenate(tops), [split.targets[u] for u in users], k)
