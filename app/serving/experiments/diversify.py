"""Diversified re-ranking by maximal marginal relevance (MMR) over the model's neighbour index.

Items are picked greedily: each next item maximises ``λ·relevance - (1-λ)·max similarity to the
items already picked``. Relevance is the candidate's score min-max scaled to [0, 1] within the
candidate list. Similarity of two items is the neighbour-index score of one for the other
(scaled by the row's best score, so in [0, 1]; taken both ways, 0 when neither lists the other):
the same item-item signal ``/items/{id}/similar`` serves, with no catalogue read per request.

A model without a neighbour index has no similarity to work with; the list keeps its order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.serving.model.ranking import LoadedModel, NeighbourIndex
from app.serving.types import ScoredItem


def mmr_rerank(
    model: LoadedModel, candidates: Sequence[ScoredItem], k: int, lambda_: float
) -> tuple[ScoredItem, ...]:
    """The best ``k`` of ``candidates`` (best first) re-ranked for diversity; each score is the
    item's MMR value when picked, so scores fall along the list."""
    if model.neighbours is None or len(candidates) <= 1 or lambda_ >= 1:
        return tuple(candidates[:k])
    rows = np.array([model.item_index[c.item_id] for c in candidates], dtype=np.int64)
    relevance = _scaled(np.array([c.score for c in candidates], dtype=np.float64))
    similarity = _similarity(model.neighbours, rows)
    closest = np.zeros(len(candidates))  # max similarity to any picked item
    available = np.ones(len(candidates), dtype=bool)
    picked: list[ScoredItem] = []
    for _ in range(min(k, len(candidates))):
        marginal = np.where(available, lambda_ * relevance - (1 - lambda_) * closest, -np.inf)
        best = int(np.argmax(marginal))
        picked.append(ScoredItem(candidates[best].item_id, round(float(marginal[best]), 6)))
        available[best] = False
        closest = np.maximum(closest, similarity[best])
    return tuple(picked)


def _scaled(scores: np.ndarray) -> np.ndarray:
    spread = scores.max() - scores.min()
    return (scores - scores.min()) / spread if spread > 0 else np.ones_like(scores)


def _similarity(neighbours: NeighbourIndex, rows: np.ndarray) -> np.ndarray:
    """[n, n] similarities of the candidate items ``rows`` (model item indices), symmetric."""
    position = {int(row): i for i, row in enumerate(rows)}
    lists = np.asarray(neighbours.indices[rows])
    scores = np.asarray(neighbours.scores[rows], dtype=np.float64)
    best = scores.max(axis=1, initial=0.0)
    similarity = np.zeros((len(rows), len(rows)))
    for i, (items, item_scores) in enumerate(zip(lists, scores, strict=True)):
        if best[i] <= 0:
            continue
        for item, score in zip(items.tolist(), item_scores.tolist(), strict=True):
            j = position.get(item)
            if j is not None and score > 0:
                similarity[i, j] = score / best[i]
    return np.maximum(similarity, similarity.T)
