"""Fill CMS content slots for one user: a title and items with their display attributes.

Several slots of one page are filled in order, and each excludes the items of the slots
before it (earlier slots win). Exclusions act on a full score vector or a full neighbour
row, topped up from popular items, so a later slot still gets ``k`` items when the catalogue
allows. Business rules apply to every slot through the engine and ``ItemRules``; a slot's
``fallback_items`` fill whatever its strategy could not. A title naming the user's newest item
(``{last_item_title}``) discloses their history, so callers not entitled to it get the slot's
``fallback_title``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from app.artifacts import CatalogueItem
from app.experiments.assignment import Assignment
from app.serving.catalogue.rules import ItemRules
from app.serving.experiments.strategies import StrategyRecommender
from app.serving.recommend.engine import RecommendationEngine
from app.serving.surfaces.content_slots import Slot, SlotStrategy
from app.serving.surfaces.similar import NoNeighbourIndexError, similar_items
from app.serving.top_k import ranked_below
from app.serving.types import RecommendRequest, ScoredItem, Source

SIMILAR_SOURCE = "similar_to_last_item"
FALLBACK_SOURCE = "fallback_items"


class UnknownSlotError(LookupError):
    def __init__(self, slot_id: str) -> None:
        super().__init__(f"unknown content slot {slot_id!r}")
        self.slot_id = slot_id


@dataclass(frozen=True, slots=True)
class BlockItem:
    score: float
    display: CatalogueItem


@dataclass(frozen=True, slots=True)
class Block:
    slot: Slot
    title: str
    items: tuple[BlockItem, ...]
    source: str  # a ``Source``, ``similar_to_last_item`` or ``fallback_items``
    model_version: str
    assignment: Assignment | None  # the experiment variant that made a personalised slot


class ContentBlocks:
    def __init__(
        self,
        slots: dict[str, Slot],
        engine: RecommendationEngine,
        rules: ItemRules,
        recommender: StrategyRecommender,
    ) -> None:
        self._slots = slots
        self._engine = engine
        self._rules = rules
        self._recommender = recommender

    @property
    def slots(self) -> dict[str, Slot]:
        return self._slots

    def slot(self, slot_id: str) -> Slot:
        slot = self._slots.get(slot_id)
        if slot is None:
            raise UnknownSlotError(slot_id)
        return slot

    async def fill(
        self,
        slot_ids: Sequence[str],
        user_id: str,
        assignment: Assignment | None,
        *,
        use_cache: bool = True,
        name_history: bool = True,
    ) -> list[Block]:
        """One block per slot, in order, no item repeated across them. ``assignment`` (an
        experiment variant) makes the personalised slots; ``UnknownSlotError`` first. Titles
        name the user's items only with ``name_history``."""
        slots = [self.slot(slot_id) for slot_id in slot_ids]
        await self._rules.refresh()
        # What the user is not interested in counts as taken: no slot shows it.
        taken: set[str] = set(await self._engine.not_interested_items(user_id))
        blocks = []
        for slot in slots:
            block = await self._fill_one(slot, user_id, taken, assignment, use_cache)
            if not name_history:
                block = replace(block, title=slot.render_title({}))
            taken.update(item.display.item_id for item in block.items)
            blocks.append(block)
        return blocks

    async def _fill_one(
        self,
        slot: Slot,
        user_id: str,
        taken: set[str],
        assignment: Assignment | None,
        use_cache: bool,
    ) -> Block:
        model = self._engine.model
        title_values: dict[str, str | None] = {}
        used: Assignment | None = None
        if slot.strategy is SlotStrategy.PERSONALIZED:
            request = RecommendRequest(
                user_id,
                slot.k,
                tuple(sorted(taken)),
                use_cache=use_cache,
                filters=slot.filters,
                repeat=slot.repeat,
            )
            rec = await self._recommender.recommend(request, assignment)
            items, source, version = list(rec.items), rec.source.value, rec.model_version
            used = assignment
        else:
            items, source, version = [], Source.POPULAR.value, model.version
            if slot.strategy is SlotStrategy.SIMILAR_TO_LAST_ITEM:
                history = await self._engine.history(user_id)
                similar = self._similar(slot, history, taken)
                if similar is not None:
                    last = self._rules.display(history[-1])
                    items, source = similar, SIMILAR_SOURCE
                    title_values = {
                        "last_item_title": last.title,
                        "last_item_category": next(iter(last.categories), None),
                    }
            if source == Source.POPULAR.value:
                items = list(self._engine.popular(slot.k, taken, slot.filters))
        if len(items) < slot.k:
            filled = self._with_fallback_items(slot, items, taken)
            source = FALLBACK_SOURCE if filled and not items else source
            items = filled
        return Block(
            slot=slot,
            title=slot.render_title(title_values),
            items=tuple(BlockItem(i.score, self._rules.display(i.item_id)) for i in items),
            source=source,
            model_version=version,
            assignment=used,
        )

    def _similar(
        self, slot: Slot, history: tuple[str, ...], taken: set[str]
    ) -> list[ScoredItem] | None:
        """Items like the newest of ``history``, none already seen or taken; None when there
        is no such item or the model has no neighbour index (the slot then shows popular)."""
        model = self._engine.model
        if not history or history[-1] not in model.item_index:
            return None
        try:
            answer = similar_items(
                model,
                history[-1],
                slot.k,
                self._rules,
                exclude=taken | set(history),
                item_filter=slot.filters,
            )
        except NoNeighbourIndexError:
            return None
        return answer.items

    def _with_fallback_items(
        self, slot: Slot, items: list[ScoredItem], taken: set[str]
    ) -> list[ScoredItem]:
        present = taken | {i.item_id for i in items}
        candidates = [i for i in slot.fallback_items if i not in present]
        fill = self._rules.allowed(candidates, slot.filters)[: slot.k - len(items)]
        return items + ranked_below(items, fill)
