"""Items related to one item, read from the model's precomputed neighbour index."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from app.serving.catalogue.rule_config import ItemFilter
from app.serving.catalogue.rules import ItemRules
from app.serving.model.ranking import LoadedModel
from app.serving.top_k import ranked_below
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


def similar_items(
    model: LoadedModel,
    item_id: str,
    k: int,
    rules: ItemRules | None = None,
    *,
    exclude: Collection[str] = (),
    item_filter: ItemFilter | None = None,
) -> SimilarItems:
    """Up to ``k`` items most related to ``item_id``, best first, none in ``exclude`` (fewer
    when the item has fewer related items; at most the index width ``M``). With ``rules``,
    items they (and ``item_filter``) exclude are skipped and the list is topped up to ``k``
    from the popular items they allow."""
    if model.neighbours is None:
        raise NoNeighbourIndexError(f"model {model.version} has no neighbour index")
    row = model.item_index.get(item_id)
    if row is None:
        raise UnknownItemError(f"unknown item {item_id!r}: not in model {model.version}")
    items = [
        ScoredItem(model.item_ids[int(i)], round(float(s), 6))
        for i, s in zip(model.neighbours.indices[row], model.neighbours.scores[row], strict=True)
        if i >= 0 and model.item_ids[int(i)] not in exclude
    ]
    if rules is None:
        return SimilarItems(item_id, items[:k], model.version)
    items = rules.keep(items, k, item_filter)
    if len(items) < k:
        taken = {item_id, *exclude, *(i.item_id for i in items)}
        fill = rules.top_popular(model, k - len(items), taken, item_filter)
        items += ranked_below(items, [f.item_id for f in fill])
    return SimilarItems(item_id, items, model.version)
