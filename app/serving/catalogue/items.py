"""The item catalogue held in memory by every worker: display attributes and the columns
business rules filter on, as numpy arrays over a catalogue index.

Loaded once at start-up from the model directory's ``catalogue.json``, or for a two-stage
model ``catalogue.parquet`` (``app/artifacts.py``). A model without one (exported before
catalogues existed) still serves: every item then shows its id as title and passes the
filters that need no attribute. The catalogue index holds the file's items plus the served
model's; one extra last row stands for an item the catalogue has never heard of (a pinned
older model's), with default attributes.

Display attributes stay columns (Arrow arrays) and an item's ``CatalogueItem`` is built when
it is shown: a million pydantic objects would cost each worker about a gigabyte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import TypeAdapter, ValidationError

from app.artifacts import CATALOGUE_FILE, CATALOGUE_PARQUET_FILE, CatalogueItem
from app.serving.model.ranking import LoadedModel, ModelLoadError

_ENTRIES = TypeAdapter(list[CatalogueItem])
DISPLAY_COLUMNS = ("item_id", "title", "categories", "image_url")
FLAG_COLUMNS = ("price", "in_stock", "hidden")


@dataclass(frozen=True)
class Availability:
    """An override of an item's catalogue flags; ``None`` keeps the catalogue's value."""

    hidden: bool | None = None
    in_stock: bool | None = None


@dataclass
class ItemCatalogue:
    display: pa.Table  # DISPLAY_COLUMNS, one row per catalogue row
    index: dict[str, int]
    price: np.ndarray  # float64 [n + 1], NaN when unknown
    base_hidden: np.ndarray  # bool [n + 1], as built
    base_in_stock: np.ndarray  # bool [n + 1], as built
    category_rows: dict[str, np.ndarray] = field(default_factory=dict)  # category -> rows

    @property
    def unknown_row(self) -> int:
        return self.display.num_rows

    def get(self, item_id: str) -> CatalogueItem:
        """The item's display attributes (id as title for an item the catalogue lacks)."""
        row = self.index.get(item_id)
        if row is None:
            return CatalogueItem(item_id=item_id, title=item_id)
        display = self.display
        price = float(self.price[row])
        return CatalogueItem(
            item_id=item_id,
            title=display.column("title")[row].as_py(),
            categories=display.column("categories")[row].as_py() or [],
            price=None if np.isnan(price) else price,
            in_stock=bool(self.base_in_stock[row]),
            hidden=bool(self.base_hidden[row]),
            image_url=display.column("image_url")[row].as_py(),
        )

    def rows_of(self, item_ids: Sequence[str]) -> np.ndarray:
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
    artifacts = model.manifest.artifacts
    try:
        if CATALOGUE_PARQUET_FILE in artifacts:
            table = pq.read_table(model_dir / CATALOGUE_PARQUET_FILE)
            catalogue = catalogue_from_table(table.select([*DISPLAY_COLUMNS, *FLAG_COLUMNS]), model)
            del table
            # Arrow's allocator keeps freed pages for reuse: the decoding's transient buffers
            # (~120 MB at 1M items) would stay resident in every worker.
            pa.default_memory_pool().release_unused()
            return catalogue
        entries: list[CatalogueItem] = []
        if CATALOGUE_FILE in artifacts:
            entries = _ENTRIES.validate_python(
                orjson.loads((model_dir / CATALOGUE_FILE).read_bytes())
            )
    except (OSError, KeyError, pa.ArrowException, orjson.JSONDecodeError, ValidationError) as exc:
        raise ModelLoadError(f"{model_dir}: cannot load the item catalogue: {exc}") from exc
    return build_catalogue(entries, model.item_ids)


def build_catalogue(entries: list[CatalogueItem], model_item_ids: Sequence[str]) -> ItemCatalogue:
    table = pa.Table.from_pylist(
        [entry.model_dump(include=set(DISPLAY_COLUMNS + FLAG_COLUMNS)) for entry in entries],
        schema=CATALOGUE_SCHEMA,
    )
    return _with_model_items(table, model_item_ids)


def catalogue_from_table(table: pa.Table, model: LoadedModel) -> ItemCatalogue:
    table = table.cast(CATALOGUE_SCHEMA)
    ids = table.column("item_id")
    if len(ids) == model.n_items and pc.all(pc.equal(ids, pa.array(model.item_ids))).as_py():
        # The usual case (export writes the rows in the model's item order): the model's id
        # index serves the catalogue too, instead of a second million-entry dict.
        return _catalogue(table, model.item_index)
    return _with_model_items(table, model.item_ids)


CATALOGUE_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("categories", pa.list_(pa.string())),
        ("image_url", pa.string()),
        ("price", pa.float64()),
        ("in_stock", pa.bool_()),
        ("hidden", pa.bool_()),
    ]
)


def _with_model_items(table: pa.Table, model_item_ids: Sequence[str]) -> ItemCatalogue:
    """The catalogue of ``table``'s rows plus a row (id as title) per model item it lacks."""
    ids: list[str] = table.column("item_id").to_pylist()
    index = {item_id: row for row, item_id in enumerate(ids)}
    missing = [i for i in model_item_ids if i not in index]
    if missing:
        extra = pa.table(
            {
                "item_id": missing,
                "title": missing,
                "categories": pa.nulls(len(missing), pa.list_(pa.string())),
                "image_url": pa.nulls(len(missing), pa.string()),
                "price": pa.nulls(len(missing), pa.float64()),
                "in_stock": pa.nulls(len(missing), pa.bool_()),
                "hidden": pa.nulls(len(missing), pa.bool_()),
            },
            schema=CATALOGUE_SCHEMA,
        )
        table = pa.concat_tables([table, extra])
        index.update((item_id, len(ids) + k) for k, item_id in enumerate(missing))
    return _catalogue(table, index)


def _catalogue(table: pa.Table, index: dict[str, int]) -> ItemCatalogue:
    return ItemCatalogue(
        display=table.select(list(DISPLAY_COLUMNS)).combine_chunks(),
        index=index,
        # One more row than the catalogue: the unknown item's defaults.
        price=_with_default(table.column("price"), np.nan).astype(np.float64),
        base_hidden=_with_default(table.column("hidden"), False).astype(bool),
        base_in_stock=_with_default(table.column("in_stock"), True).astype(bool),
        category_rows=_category_rows(table.column("categories")),
    )


def _with_default(column: pa.ChunkedArray, default: float) -> np.ndarray:
    """The column with ``default`` for nulls and one more row holding it."""
    return np.append(pc.fill_null(column, default).to_numpy(), default)


def _category_rows(categories: pa.ChunkedArray) -> dict[str, np.ndarray]:
    """Category -> the rows naming it (ascending)."""
    combined = categories.combine_chunks()
    rows = pc.list_parent_indices(combined).to_numpy()
    names = pc.dictionary_encode(pc.list_flatten(combined))
    codes = names.indices.to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names.dictionary) + 1))
    return {
        name: np.unique(rows[order[bounds[k] : bounds[k + 1]]]).astype(np.int64)
        for k, name in enumerate(names.dictionary.to_pylist())
    }
