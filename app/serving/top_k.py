"""The top-k cut every list goes through: the best ``k`` of a full score vector (or of a
two-stage model's candidates' scores) with excluded indices masked, those winners as scored
items, and fills ranked below them. What is excluded is decided before, by the business rules
(``catalogue.rules``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.serving.model.ranking import LoadedModel
from app.serving.types import ScoredItem


def top_k(
    scores: np.ndarray, k: int, excluded: np.ndarray, items: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the best ``k`` items, best first, never an excluded index.
    ``items``: the item index of each score (a two-stage model's candidates); ``None``: one
    score per item, in index order.

    ``argpartition`` keeps this O(n) in the catalogue size; only the k winners are sorted.
    """
    masked = scores.astype(np.float32, copy=True)
    if excluded.size:
        masked[excluded if items is None else np.isin(items, excluded)] = -np.inf
    k = min(k, masked.size)
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    part = np.argpartition(-masked, k - 1)[:k]
    order = part[np.argsort(-masked[part], kind="stable")]
    # Fewer than k allowed items: the excluded ones (-inf) sort last among the k; drop them.
    order = order[np.isfinite(masked[order])]
    return (order if items is None else items[order]), masked[order]


def scored_items(
    model: LoadedModel, indices: np.ndarray, scores: np.ndarray
) -> tuple[ScoredItem, ...]:
    """``top_k``'s answer as items of ``model``."""
    return tuple(
        ScoredItem(model.item_ids[i], round(float(s), 6))
        for i, s in zip(indices.tolist(), scores.tolist(), strict=True)
    )


def ranked_below(items: Sequence[ScoredItem], item_ids: Sequence[str]) -> list[ScoredItem]:
    """``item_ids`` (a fill: fallback or popular items) scored just below the last of
    ``items``, in order, so the joined list stays best first."""
    floor = min((i.score for i in items), default=0.0)
    return [
        ScoredItem(item_id, round(floor - (rank + 1) * 1e-3, 6))
        for rank, item_id in enumerate(item_ids)
    ]
