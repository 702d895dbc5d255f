"""Business rules at serving time: hidden and out-of-stock items, category and price filters,
boosts. Applied to a full score vector before the top-k cut (so exclusions never shorten a
list that had other candidates) by every path that returns items: model scores, the
popularity fallback, similar items and content blocks.

Masks are computed over the catalogue index (``items.py``) once per (filter, availability
generation) and mapped to each model's item index, so a pinned older model is filtered too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.artifacts import CatalogueItem
from app.observability import metrics
from app.serving.catalogue.availability import AvailabilityStore, AvailabilityStoreError
from app.serving.catalogue.items import Availability, ItemCatalogue, load_catalogue
from app.serving.catalogue.rule_config import BusinessRules, ItemFilter
from app.serving.model.ranking import LoadedModel, ModelLoadError
from app.serving.top_k import scored_items, top_k
from app.serving.types import ScoredItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemState:
    """An item's flags as served now: the build's values with any override applied."""

    hidden: bool
    in_stock: bool
    override: Availability | None


class ItemRules:
    """One per worker, shared by every engine. Polls availability at most once per
    ``refresh_seconds`` (``refresh``, called on the request path)."""

    def __init__(
        self,
        catalogue: ItemCatalogue,
        catalogue_version: str,
        models_root: Path,
        rules: BusinessRules,
        store: AvailabilityStore,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalogue = catalogue
        self._catalogue_version = catalogue_version
        self._models_root = models_root
        self._rules = rules
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._next_refresh = 0.0
        self._generation = 0
        self._overrides: dict[str, Availability] = {}
        self._use(catalogue)
        # model version -> the popularity list's item indices and scores
        self._popular: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _use(self, catalogue: ItemCatalogue) -> None:
        self._catalogue = catalogue
        self._hidden, self._in_stock = catalogue.effective_flags(self._overrides)
        self._allowed: dict[str, np.ndarray] = {}  # filter key -> bool [n + 1], this generation
        self._boost = _boost_vector(catalogue, self._rules)
        self._model_rows: dict[str, np.ndarray] = {}  # model version -> catalogue rows
        # (model version, filter key) -> items not shown, over the model's index (this
        # generation); model version -> boost per model item (None: no boost applies).
        self._blocked: dict[tuple[str, str], np.ndarray] = {}
        self._model_boost: dict[str, np.ndarray | None] = {}

    def follow(self, model: LoadedModel) -> None:
        """Switch to the catalogue published with ``model`` (a hot reload); a model without
        a readable one keeps the current catalogue, its new items shown by id."""
        if model.version == self._catalogue_version:
            return
        try:
            catalogue = load_catalogue(self._models_root / model.version, model)
        except ModelLoadError as exc:
            log.error("kept the item catalogue of %s: %s", self._catalogue_version, exc)
            return
        self._catalogue_version = model.version
        self._use(catalogue)

    @property
    def catalogue(self) -> ItemCatalogue:
        return self._catalogue

    @property
    def generation(self) -> int:
        """Availability generation; changes whenever an override is written anywhere."""
        return self._generation

    def cache_key(self, item_filter: ItemFilter | None) -> str:
        """Names the rules a list was made under, for recommendation cache keys."""
        return f"g{self._generation}" + (f"|{item_filter.key()}" if item_filter else "")

    async def refresh(self) -> None:
        """Apply overrides written since the last poll (by any worker), at most once per
        ``refresh_seconds``. A failing store keeps the last known overrides."""
        if self._clock() < self._next_refresh:
            return
        self._next_refresh = self._clock() + self._refresh_seconds
        await self._pull()

    async def close(self) -> None:
        await self._store.close()

    async def set_availability(self, item_id: str, availability: Availability) -> ItemState:
        """Store an override and apply it in this worker at once (others within a refresh)."""
        await self._store.put(item_id, availability)
        await self._pull()
        return self.state(item_id)

    def state(self, item_id: str) -> ItemState:
        row = self._catalogue.index[item_id]
        return ItemState(
            bool(self._hidden[row]), bool(self._in_stock[row]), self._overrides.get(item_id)
        )

    def display(self, item_id: str) -> CatalogueItem:
        """Display attributes with the served availability flags."""
        entry = self._catalogue.get(item_id)
        row = self._catalogue.index.get(item_id)
        if row is None:
            return entry
        return entry.model_copy(
            update={"hidden": bool(self._hidden[row]), "in_stock": bool(self._in_stock[row])}
        )

    def adjust(
        self,
        model: LoadedModel,
        scores: np.ndarray,
        item_filter: ItemFilter | None = None,
        items: np.ndarray | None = None,
    ) -> np.ndarray:
        """``scores`` (one per model item, or per index of ``items``) boosted, ``-inf`` where
        an item may not be shown. A boost multiplies a positive score and divides a negative
        one, so it always helps."""
        blocked, boost = self._for_model(model, item_filter)
        if items is not None:
            blocked = blocked[items]
            boost = None if boost is None else boost[items]
        adjusted = scores.astype(np.float32, copy=True)
        if boost is not None:
            adjusted = np.where(adjusted > 0, adjusted * boost, adjusted / boost)
        adjusted[blocked] = -np.inf
        return adjusted

    def popular_scores(self, model: LoadedModel) -> tuple[np.ndarray, np.ndarray]:
        """The popularity list as ``(item indices, scores)``: 1 for the first, falling with
        the rank. Only the list's items, not a vector over the catalogue: at 1M items the
        fallback would otherwise filter and sort a million scores per request. Cached per
        model version."""
        popular = self._popular.get(model.version)
        if popular is None:
            ranks = model.item_indices(model.popular)
            n = max(len(model.popular), 1)
            popular = (ranks, 1.0 - np.arange(ranks.size, dtype=np.float32) / n)
            self._popular[model.version] = popular
        return popular

    def top_popular(
        self,
        model: LoadedModel,
        k: int,
        exclude: Collection[str],
        item_filter: ItemFilter | None = None,
    ) -> tuple[ScoredItem, ...]:
        """The popularity fallback under the rules: the best ``k`` popular items that may be
        shown and are not in ``exclude``, boosts applied."""
        items, scores = self.popular_scores(model)
        adjusted = self.adjust(model, scores, item_filter, items)
        excluded = model.item_indices(list(exclude))
        return scored_items(model, *top_k(adjusted, k, excluded, items))

    def keep(
        self, items: Sequence[ScoredItem], k: int, item_filter: ItemFilter | None = None
    ) -> list[ScoredItem]:
        """The first ``k`` of ``items`` that may be shown (pass more than ``k`` candidates)."""
        shown = set(self.allowed((i.item_id for i in items), item_filter))
        return [i for i in items if i.item_id in shown][:k]

    def items_in_categories(self, categories: Iterable[str]) -> frozenset[str]:
        """The ids of every catalogue item in any of ``categories``."""
        rows = [self._catalogue.category_rows.get(c, _NO_ROWS) for c in categories]
        if not rows:
            return frozenset()
        ids = self._catalogue.display.column("item_id")
        return frozenset(ids.take(np.unique(np.concatenate(rows))).to_pylist())

    def allowed(self, item_ids: Iterable[str], item_filter: ItemFilter | None = None) -> list[str]:
        """The ids that may be shown, order kept."""
        allowed = self._allowed_rows(item_filter)
        unknown = self._catalogue.unknown_row
        index = self._catalogue.index
        return [i for i in item_ids if allowed[index.get(i, unknown)]]

    async def _pull(self) -> None:
        try:
            changed = await self._store.changes_since(self._generation)
        except AvailabilityStoreError as exc:
            metrics.AVAILABILITY_REFRESH_ERRORS.inc()
            log.warning("availability overrides not refreshed: %s", exc)
            return
        if changed is not None:
            self._generation, self._overrides = changed
            self._hidden, self._in_stock = self._catalogue.effective_flags(self._overrides)
            self._allowed = {}
            self._blocked = {}

    def _allowed_rows(self, item_filter: ItemFilter | None) -> np.ndarray:
        key = item_filter.key() if item_filter else ""
        allowed = self._allowed.get(key)
        if allowed is None:
            allowed = ~self._hidden & self._mask(self._rules.filters)
            if item_filter is not None:
                allowed &= self._mask(item_filter)
            if self._excludes_out_of_stock(item_filter):
                allowed &= self._in_stock
            self._allowed[key] = allowed
        return allowed

    def _mask(self, item_filter: ItemFilter) -> np.ndarray:
        catalogue = self._catalogue
        mask = np.ones(catalogue.unknown_row + 1, dtype=bool)
        if item_filter.categories is not None:
            in_category = np.zeros_like(mask)
            for category in item_filter.categories:
                in_category[catalogue.category_rows.get(category, _NO_ROWS)] = True
            mask &= in_category
        for category in item_filter.exclude_categories:
            mask[catalogue.category_rows.get(category, _NO_ROWS)] = False
        with np.errstate(invalid="ignore"):  # NaN (no price) compares False: excluded
            if item_filter.price_min is not None:
                mask &= catalogue.price >= item_filter.price_min
            if item_filter.price_max is not None:
                mask &= catalogue.price <= item_filter.price_max
        return mask

    def _excludes_out_of_stock(self, item_filter: ItemFilter | None) -> bool:
        for deciding in (item_filter, self._rules.filters):
            if deciding is not None and deciding.exclude_out_of_stock is not None:
                return deciding.exclude_out_of_stock
        return True

    def _for_model(
        self, model: LoadedModel, item_filter: ItemFilter | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The model-aligned mask of items not shown and boosts, computed once per model,
        filter and generation so a request pays one masked assignment."""
        key = (model.version, item_filter.key() if item_filter else "")
        blocked = self._blocked.get(key)
        if blocked is None:
            blocked = ~self._allowed_rows(item_filter)[self._rows(model)]
            self._blocked[key] = blocked
        if model.version not in self._model_boost:
            boost = self._boost[self._rows(model)]
            self._model_boost[model.version] = None if (boost == 1).all() else boost
        return blocked, self._model_boost[model.version]

    def _rows(self, model: LoadedModel) -> np.ndarray:
        rows = self._model_rows.get(model.version)
        if rows is None:
            rows = self._catalogue.rows_of(model.item_ids)
            self._model_rows[model.version] = rows
        return rows


_NO_ROWS = np.empty(0, dtype=np.int64)


def _boost_vector(catalogue: ItemCatalogue, rules: BusinessRules) -> np.ndarray:
    """Product of every boost that applies to each catalogue row (1 = none)."""
    boost = np.ones(catalogue.unknown_row + 1, dtype=np.float32)
    for rule in rules.boosts:
        if rule.category is not None:
            boost[catalogue.category_rows.get(rule.category, _NO_ROWS)] *= rule.factor
        elif rule.item_id in catalogue.index:
            boost[catalogue.index[rule.item_id]] *= rule.factor
    return boost
