"""The item catalogue published beside a model (``catalogue.json``, see ``app/artifacts.py``).

Item files name their display attributes differently (the synthetic shop: ``title``,
``category``, ``price``, ``in_stock``; MovieLens in RecBole: ``movie_title``, ``class`` for
genres, no price), so each catalogue field takes the first of a few known column names.
Token sequences (a title split into words, a list of genres) come back as lists.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from app.artifacts import CatalogueItem
from app.data.types import ITEM_ID

TITLE_COLUMNS = ("title", "movie_title", "name")
CATEGORY_COLUMNS = ("category", "categories", "class", "genres", "genre")
PRICE_COLUMNS = ("price",)
IN_STOCK_COLUMNS = ("in_stock",)
HIDDEN_COLUMNS = ("hidden",)
IMAGE_COLUMNS = ("image_url", "image")
_TRUE = frozenset({"1", "true", "yes", "y", "t"})


def catalogue_json(items: pd.DataFrame) -> bytes:
    """``catalogue.json`` for the validated ``items`` table."""
    records = [entry.model_dump() for entry in catalogue_items(items)]
    return orjson.dumps(records)


def catalogue_parquet(items: pd.DataFrame) -> bytes:
    """``catalogue.parquet``, the same records as columns: what a two-stage model's serving
    keeps in memory without a Python object per item. Rows sorted by id, the model's item
    order, so serving can index both with one dict."""
    records = [entry.model_dump() for entry in catalogue_items(items)]
    table = pa.Table.from_pylist(records).sort_by("item_id")
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def catalogue_items(items: pd.DataFrame) -> list[CatalogueItem]:
    """One ``CatalogueItem`` per row of ``items``, in table order."""
    title = _first_column(items, TITLE_COLUMNS)
    category = _first_column(items, CATEGORY_COLUMNS)
    price = _first_column(items, PRICE_COLUMNS)
    in_stock = _first_column(items, IN_STOCK_COLUMNS)
    hidden = _first_column(items, HIDDEN_COLUMNS)
    image = _first_column(items, IMAGE_COLUMNS)
    entries = []
    for row in items.to_dict("records"):
        item_id = str(row[ITEM_ID])
        entries.append(
            CatalogueItem(
                item_id=item_id,
                title=_text(row.get(title)) or item_id if title else item_id,
                categories=_tokens(row.get(category)) if category else [],
                price=_number(row.get(price)) if price else None,
                in_stock=_flag(row.get(in_stock), default=True) if in_stock else True,
                hidden=_flag(row.get(hidden), default=False) if hidden else False,
                image_url=_text(row.get(image)) or None if image else None,
            )
        )
    return entries


def _first_column(items: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((name for name in names if name in items.columns), None)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _tokens(value: Any) -> list[str]:
    """A token (one category) or a token sequence (genres, title words) as a list."""
    if _is_missing(value):
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(token) for token in value]


def _text(value: Any) -> str:
    return " ".join(_tokens(value))


def _number(value: Any) -> float | None:
    if _is_missing(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _flag(value: Any, *, default: bool) -> bool:
    if _is_missing(value):
        return default
    return str(value).strip().lower() in _TRUE
