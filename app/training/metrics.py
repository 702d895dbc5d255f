"""Top-k ranking metrics with binary relevance, and the loop that applies them to a scorer.

NDCG@k uses an ideal DCG over ``min(|relevant|, k)`` hits; recall@k divides hits by
``|relevant|``; hit rate is the share of users with at least one hit. Users with no relevant
items are not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from app.training.hybrid import top_k
from app.training.split import HoldoutSplit

Scorer = Callable[[list[np.ndarray], list[np.ndarray]], np.ndarray]


def ranking_metrics(top: np.ndarray, relevant: Sequence[np.ndarray], k: int) -> dict[str, float]:
    """Mean NDCG@k, recall@k and hit rate@k of ranked item indices ``top`` (users x >=k)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, recall, hits = [], [], []
    for ranked, rel in zip(top[:, :k], relevant, strict=True):
        if len(rel) == 0:
            continue
        is_hit = np.isin(ranked, rel)
        ideal = discounts[: min(len(rel), k)].sum()
        ndcg.append(float(discounts[: len(ranked)][is_hit].sum() / ideal))
        recall.append(float(is_hit.sum() / len(rel)))
        hits.append(float(is_hit.any()))
    if not ndcg:
        raise ValueError("no user has relevant items: cannot compute ranking metrics")
    return {
        f"ndcg@{k}": float(np.mean(ndcg)),
        f"recall@{k}": float(np.mean(recall)),
        f"hit_rate@{k}": float(np.mean(hits)),
    }


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
        users = np.flatnonzero([len(t) > 0 for t in split.targets])
    seen = split.train.histories(max_items=len(split.train.item_index))
    histories = split.train.histories(history_max)
    tokens = split.train.user_token_lists()
    tops = []
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = scorer([histories[u] for u in batch], [tokens[u] for u in batch])
        tops.append(top_k_excluding(scores, [seen[u] for u in batch], k))
    return ranking_metrics(np.concatenate(tops), [split.targets[u] for u in users], k)
