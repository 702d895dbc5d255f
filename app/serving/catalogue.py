"""The item catalogue held in memory by every worker: display attributes and the columns
business rules filter on, as numpy arrays over a catalogue index.

Loaded once at start-up from the model directory's ``catalogue.json`` (``app/artifacts.py``).
A model without one (exported before catalogues existed) still serves: every item then shows
its id as title and passes the filters that need no attribute. The catalogue index holds the
file's items plus the served model's; one extra last row stands for an item the catalogue has
never heard of (a pinned older model's), with default attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
from pydantic import TypeAdapter, ValidationError

from app.artifacts import CATALOGUE_FILE, CatalogueItem
from app.serving.ranking import LoadedModel, ModelLoadError

_ENTRIES = TypeAdapter(list[CatalogueItem])


@dataclass(frozen=True)
class Availability:
    """An override of an item's catalogue flags; ``None`` keeps the catalogue's value."""

    hidden: bool | None = None
    in_stock: bool | None = None


@dataclass
class ItemCatalogue:
    entries: tuple[CatalogueItem, ...]
    index: dict[str, int]
    price: np.ndarray  # float64 [n + 1], NaN when unknown
    base_hidden: np.ndarray  # bool [n + 1], as built
    base_in_stock: np.ndarray  # bool [n + 1], as built
    category_rows: dict[str, np.ndarray] = field(default_factory=dict)  # category -> rows

    @property
    def unknown_row(self) -> int:
        return len(self.entries)

    def get(self, item_id: str) -> CatalogueItem:
        """The item's display attributes (id as title for an item the catalogue lacks)."""
        row = self.index.get(item_id)
        return (
            self.entries[row] if row is not None else CatalogueItem(item_id=item_id, title=item_id)
        )

    def rows_of(self, item_ids: tuple[str, ...]) -> np.ndarray:
        """Catalogue row of each id, ``unknown_row`` for ids it lacks."""
        unknown = self.unknown_row
        return np.fromiter(
            (self.index.get(i, unknown) for i in item_ids), dtype=np.int64, count=len(item_ids)
        )

    def effective_flags(
        self, overrides: Mapping[str, Availability]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(hidden, in_stock)`` arrays with ``overrides`` applied on top of the build."""
        hidden = self.base_hidden.copy()
        in_stock = self.base_in_stock.copy()
        for item_id, override in overrides.items():
            row = self.index.get(item_id)
            if row is None:
                continue
            if override.hidden is not None:
                hidden[row] = override.hidden
            if override.in_stock is not None:
                in_stock[row] = override.in_stock
        return hidden, in_stock


def load_catalogue(model_dir: Path, model: LoadedModel) -> ItemCatalogue:
    """The catalogue published with ``model``; raises ``ModelLoadError`` when it is corrupt."""
    entries: list[CatalogueItem] = []
    if CATALOGUE_FILE in model.manifest.artifacts:
        try:
            entries = _ENTRIES.validate_python(
                orjson.loads((model_dir / CATALOGUE_FILE).read_bytes())
            )
        except (OSError, orjson.JSONDecodeError, ValidationError) as exc:
            raise ModelLoadError(f"{model_dir}: cannot load the item catalogue: {exc}") from exc
    return build_catalogue(entries, model.item_ids)


def build_catalogue(entries: list[CatalogueItem], model_item_ids: tuple[str, ...]) -> ItemCatalogue:
    known = {entry.item_id for entry in entries}
    rows = list(entries) + [
        CatalogueItem(item_id=i, title=i) for i in model_item_ids if i not in known
    ]
    default = CatalogueItem(item_id="", title="")
    with_default = [*rows, default]
    categories: dict[str, list[int]] = {}
    for row, entry in enumerate(rows):
        for category in entry.categories:
            categories.setdefault(category, []).append(row)
    return ItemCatalogue(
        entries=tuple(rows),
        index={entry.item_id: row for row, entry in enumerate(rows)},
        price=np.array([e.price if e.price is not None else np.nan for e in with_default]),
        base_hidden=np.array([e.hidden for e in with_default], dtype=bool),
        base_in_stock=np.array([e.in_stock for e in with_default], dtype=bool),
        category_rows={c: np.array(r, dtype=np.int64) for c, r in categories.items()},
    )
