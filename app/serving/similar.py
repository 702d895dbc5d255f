"""Items related to one item, read from the model's precomputed neighbour index."""

from __future__ import annotations

from dataclasses import dataclass

from app.serving.ranking import LoadedModel
from app.serving.types import ScoredItem


class UnknownItemError(LookupError):
    """The item id is not in the served model's catalogue."""


class NoNeighbourIndexError(RuntimeError):
    """The served model was exported before neighbour indices existed."""


@dataclass(frozen=True, slots=True)
class SimilarItems:
    item_id: str
    items: list[ScoredItem]
    model_version: str


def similar_items(model: LoadedModel, item_id: str, k: int) -> SimilarItems:
    """Up to ``k`` items most related to ``item_id``, best first (fewer when the item has
    fewer related items; at most the index width ``M``)."""
    if model.neighbours is None:
        raise NoNeighbourIndexError(f"model {model.version} has no neighbour index")
    row = model.item_index.get(item_id)
    if row is None:
        raise UnknownItemError(f"unknown item {item_id!r}: not in model {model.version}")
    indices = model.neighbours.indices[row, :k]
    scores = model.neighbours.scores[row, :k]
    items = [
        ScoredItem(model.item_ids[int(i)], round(float(s), 6))
        for i, s in zip(indices, scores, strict=True)
        if i >= 0
    ]
    return SimilarItems(item_id, items, model.version)
