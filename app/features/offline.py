"""Build the Feast offline tables (Parquet) from the canonical ``Dataset``.

One row per entity, stamped ``event_timestamp = as_of``:

* ``user_attributes``: every user of the users table (tokens + raw attributes as JSON);
* ``user_behaviour``: every user with at least one interaction at or before ``as_of``;
* ``item_features``: every catalogue item and every interacted item.

Everything is vectorised over interactions: per-user lists are built as Arrow list arrays from
sorted values and offsets, never by looping over users.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from app.data.types import (
    EVENT_TYPE,
    INTERACTION_COLUMNS,
    ITEM_ID,
    TIMESTAMP,
    USER_ID,
    VALUE,
    Dataset,
    FieldType,
)
from app.features.schema import (
    EVENT_TIMESTAMP,
    HISTORY_MAX_ITEMS,
    ITEM_FEATURES_VIEW,
    USER_ATTRIBUTES_VIEW,
    USER_BEHAVIOUR_VIEW,
)
from app.features.tokens import AttributeTokens, attribute_tokens, is_missing

FREQUENCY_WINDOW_SECONDS = 30 * 86_400
TOP_CATEGORIES = 5
PURCHASE = "purchase"
# The item field category affinity reads when there is no ``category`` field, best first.
CATEGORY_FIELDS = ("category", "categories", "genre", "genres", "class")


@dataclass(frozen=True)
class FeatureTablesReport:
    """What ``build_feature_tables`` wrote."""

    as_of: datetime
    paths: dict[str, Path]
    rows: dict[str, int]
    category_field: str | None
    user_quantile_edges: dict[str, tuple[float, ...]]
    item_quantile_edges: dict[str, tuple[float, ...]]
    interactions_after_as_of: int
    seconds: float


@dataclass(frozen=True)
class InteractionAggregates:
    """What the feature tables need from the interactions, whichever engine counted them:
    the ``user_behaviour`` table (rows in user id order), events and newest interaction time
    per item id, and how many interactions came after ``as_of`` (left out)."""

    user_behaviour: pa.Table
    item_events: pd.Series
    item_last_at: pd.Series
    after_as_of: int


# (dataset, item categories as ``item_categories`` gives them, as_of in Unix seconds).
Aggregator = Callable[[Dataset, pd.DataFrame, int], InteractionAggregates]


def build_feature_tables(
    dataset: Dataset,
    offline_dir: Path,
    *,
    as_of: datetime,
    aggregate: Aggregator | None = None,
) -> FeatureTablesReport:
    """Compute the three offline tables and write ``<offline_dir>/<view>.parquet``.

    ``as_of`` (timezone-aware) is the snapshot time: interactions after it are left out (their
    count is reported), recency and the 30-day frequency are measured from it. ``aggregate``
    counts the interactions (default: ``local_aggregates``, in this process). Raises
    ``ValueError`` for a naive ``as_of`` or a table missing a required column.
    """
    started = time.perf_counter()
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC), got a naive datetime")
    missing = [c for c in INTERACTION_COLUMNS if c not in dataset.interactions.columns]
    if missing:
        raise ValueError(f"interactions table lacks column(s) {missing}")
    category_field = pick_category_field(dataset.item_fields)
    categories = item_categories(dataset, category_field)
    counted = (aggregate or local_aggregates)(dataset, categories, int(as_of.timestamp()))
    user_tokens = _tokens(dataset.users, dataset.user_fields, USER_ID)
    item_tokens = _tokens(dataset.items, dataset.item_fields, ITEM_ID)
    tables = {
        USER_ATTRIBUTES_VIEW: _user_attributes(dataset, user_tokens),
        USER_BEHAVIOUR_VIEW: counted.user_behaviour,
        ITEM_FEATURES_VIEW: _item_features(dataset, counted, categories, item_tokens),
    }
    paths = {
        view: write_view_table(table, offline_dir, view, as_of) for view, table in tables.items()
    }
    return FeatureTablesReport(
        as_of=as_of,
        paths=paths,
        rows={view: table.num_rows for view, table in tables.items()},
        category_field=category_field,
        user_quantile_edges=user_tokens.quantile_edges,
        item_quantile_edges=item_tokens.quantile_edges,
        interactions_after_as_of=counted.after_as_of,
        seconds=time.perf_counter() - started,
    )


def local_aggregates(
    dataset: Dataset, categories: pd.DataFrame, as_of_seconds: int
) -> InteractionAggregates:
    """``InteractionAggregates`` computed in this process, vectorised over the interactions."""
    interactions = dataset.interactions
    in_window = interactions[TIMESTAMP].to_numpy(dtype=np.int64) <= as_of_seconds
    interactions = interactions[in_window]
    events = interactions[ITEM_ID].astype(str)
    return InteractionAggregates(
        user_behaviour=_user_behaviour(interactions, categories, as_of_seconds),
        item_events=events.value_counts(),
        item_last_at=interactions[TIMESTAMP].groupby(events).max(),
        after_as_of=int((~in_window).sum()),
    )


def write_view_table(table: pa.Table, offline_dir: Path, view: str, as_of: datetime) -> Path:
    """Write ``view``'s offline table, every row stamped ``as_of``, atomically."""
    offline_dir.mkdir(parents=True, exist_ok=True)
    stamp = pa.scalar(as_of, type=pa.timestamp("us", tz="UTC"))
    timestamps = pa.array(np.full(table.num_rows, stamp.value), type=stamp.type)
    stamped = table.append_column(EVENT_TIMESTAMP, timestamps)
    return _write_atomically(stamped, offline_dir / f"{view}.parquet")


def pick_category_field(item_fields: dict[str, FieldType]) -> str | None:
    """The item field category affinity uses: a known category-like name, else the first
    ``token``/``token_seq`` field, else None."""
    categorical = [n for n, k in item_fields.items() if k in (FieldType.TOKEN, FieldType.TOKEN_SEQ)]
    for name in CATEGORY_FIELDS:
        if name in categorical:
            return name
    return categorical[0] if categorical else None


def item_categories(dataset: Dataset, category_field: str | None) -> pd.DataFrame:
    """One ``(item_id, category)`` row per category of each item, in field order (several for
    a ``token_seq`` field); blank and missing categories are left out."""
    if category_field is None or dataset.items.empty:
        return pd.DataFrame({ITEM_ID: pd.Series(dtype=str), "category": pd.Series(dtype=str)})
    pairs = dataset.items[[ITEM_ID, category_field]].explode(category_field)
    pairs.columns = [ITEM_ID, "category"]
    pairs = pairs.dropna()
    pairs = pairs.assign(
        item_id=pairs[ITEM_ID].astype(str), category=pairs["category"].astype(str).str.strip()
    )
    return pairs[pairs["category"] != ""].drop_duplicates()


def _tokens(table: pd.DataFrame, fields: dict[str, FieldType], id_column: str) -> AttributeTokens:
    return attribute_tokens(_with_id_column(table, id_column), fields, id_column)


def _with_id_column(table: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """An empty table may come without columns at all; give it its id column."""
    if id_column not in table.columns and table.empty:
        return pd.DataFrame({id_column: pd.Series(dtype=str)})
    return table


def _user_attributes(dataset: Dataset, tokens: AttributeTokens) -> pa.Table:
    users = _with_id_column(dataset.users, USER_ID)
    return pa.table(
        {
            USER_ID: pa.array(tokens.ids, type=pa.string()),
            "attribute_tokens": pa.array(tokens.by_row, type=pa.list_(pa.string())),
            "attributes_json": pa.array(_attributes_json(users, USER_ID), type=pa.string()),
        }
    )


def _user_behaviour(
    interactions: pd.DataFrame, categories: pd.DataFrame, as_of_seconds: int
) -> pa.Table:
    user_codes, user_ids = pd.factorize(interactions[USER_ID].astype(str), sort=True)
    item_codes, item_ids = pd.factorize(interactions[ITEM_ID].astype(str), sort=True)
    timestamps = interactions[TIMESTAMP].to_numpy(dtype=np.int64)
    n_users = len(user_ids)
    # Item codes follow item id order, so ties in time break by item id as in training.
    order = np.lexsort((item_codes, timestamps, user_codes))
    users, items, times = user_codes[order], item_codes[order], timestamps[order]
    bounds = np.searchsorted(users, np.arange(n_users + 1))
    last_event = times[bounds[1:] - 1]
    is_purchase = (interactions[EVENT_TYPE] == PURCHASE).to_numpy()
    purchase_values = np.where(is_purchase, interactions[VALUE].to_numpy(dtype=np.float64), 0.0)
    recent = timestamps > as_of_seconds - FREQUENCY_WINDOW_SECONDS
    history_items, history_times, pair_counts = _histories(users, items, times, n_users, item_ids)
    top_categories, top_scores = _top_categories(
        pair_counts, item_ids, categories, np.bincount(user_codes, minlength=n_users)
    )
    return pa.table(
        {
            USER_ID: pa.array(user_ids, type=pa.string()),
            "history_items": history_items,
            "history_timestamps": history_times,
            "interaction_count": pa.array(np.diff(bounds), type=pa.int64()),
            "recency_days": pa.array((as_of_seconds - last_event) / 86_400.0, type=pa.float64()),
            "frequency_30d": pa.array(
                np.bincount(user_codes, weights=recent, minlength=n_users).astype(np.int64),
                type=pa.int64(),
            ),
            "monetary": pa.array(
                np.bincount(user_codes, weights=purchase_values, minlength=n_users),
                type=pa.float64(),
            ),
            "last_event_at": pa.array(last_event, type=pa.int64()),
            "top_categories": top_categories,
            "top_category_scores": top_scores,
        }
    )


def _histories(
    users: np.ndarray, items: np.ndarray, times: np.ndarray, n_users: int, item_ids: pd.Index
) -> tuple[pa.ListArray, pa.ListArray, pd.DataFrame]:
    """Per user, distinct items by last interaction (oldest -> newest, last HISTORY_MAX_ITEMS)
    with those times; plus the (user, item, interactions) counts. Rows are (user, time)-sorted."""
    pair_keys = users.astype(np.int64) * len(item_ids) + items
    # In reversed order the first hit of each (user, item) pair is its last interaction.
    unique_keys, first_reversed, counts = np.unique(
        pair_keys[::-1], return_index=True, return_counts=True
    )
    last_rows = np.sort(len(pair_keys) - 1 - first_reversed)
    pair_users = users[last_rows]
    bounds = np.searchsorted(pair_users, np.arange(n_users + 1))
    from_end = bounds[pair_users + 1] - np.arange(len(last_rows)) - 1
    kept = last_rows[from_end < HISTORY_MAX_ITEMS]
    offsets = pa.array(np.searchsorted(users[kept], np.arange(n_users + 1)), type=pa.int32())
    pair_counts = pd.DataFrame(
        {"user": unique_keys // len(item_ids), "item": unique_keys % len(item_ids), "n": counts}
    )
    return (
        pa.ListArray.from_arrays(offsets, pa.array(item_ids.to_numpy()[items[kept]], pa.string())),
        pa.ListArray.from_arrays(offsets, pa.array(times[kept], pa.int64())),
        pair_counts,
    )


def _top_categories(
    pair_counts: pd.DataFrame, item_ids: pd.Index, categories: pd.DataFrame, totals: np.ndarray
) -> tuple[pa.ListArray, pa.ListArray]:
    """Per user, the TOP_CATEGORIES categories with the largest share of their interactions
    (an interaction counts for each category of its item), best first, ties by name."""
    category_codes, category_names = pd.factorize(categories["category"], sort=True)
    item_of_pair = item_ids.get_indexer(pd.Index(categories[ITEM_ID]))
    known = item_of_pair >= 0
    item_category = pd.DataFrame({"item": item_of_pair[known], "category": category_codes[known]})
    scores = (
        pair_counts.merge(item_category, on="item")
        .groupby(["user", "category"], sort=False)["n"]
        .sum()
        .reset_index()
    )
    scores["share"] = scores["n"] / totals[scores["user"].to_numpy()]
    scores = scores.sort_values(["user", "share", "category"], ascending=[True, False, True])
    scores = scores[scores.groupby("user").cumcount() < TOP_CATEGORIES]
    offsets = pa.array(
        np.searchsorted(scores["user"].to_numpy(), np.arange(len(totals) + 1)), type=pa.int32()
    )
    names = np.asarray(category_names, dtype=object)[scores["category"].to_numpy()]
    return (
        pa.ListArray.from_arrays(offsets, pa.array(names, pa.string())),
        pa.ListArray.from_arrays(offsets, pa.array(scores["share"].to_numpy(), pa.float32())),
    )


def _item_features(
    dataset: Dataset,
    counted: InteractionAggregates,
    categories: pd.DataFrame,
    tokens: AttributeTokens,
) -> pa.Table:
    catalogue = _with_id_column(dataset.items, ITEM_ID).copy()
    catalogue[ITEM_ID] = catalogue[ITEM_ID].astype(str)
    popularity, last_at = counted.item_events, counted.item_last_at
    ids = pd.Index(sorted(set(catalogue[ITEM_ID]) | set(popularity.index)), dtype=object)
    counts = popularity.reindex(ids, fill_value=0).to_numpy(dtype=np.int64)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.lexsort((np.arange(len(ids)), -counts))] = np.arange(1, len(ids) + 1)
    by_id = catalogue.set_index(ITEM_ID)
    row_of = by_id.index.get_indexer(ids)  # -1: interacted but not in the catalogue
    json_by_row = _attributes_json(catalogue, ITEM_ID)
    # An item's category is its first one (the first element of a token_seq field).
    primary_category = categories.groupby(ITEM_ID, sort=False)["category"].first()
    return pa.table(
        {
            ITEM_ID: pa.array(ids, type=pa.string()),
            "category": pa.array(primary_category.reindex(ids), type=pa.string(), from_pandas=True),
            "attribute_tokens": pa.array(
                [tokens.by_row[r] if r >= 0 else () for r in row_of], type=pa.list_(pa.string())
            ),
            "attributes_json": pa.array(
                [json_by_row[r] if r >= 0 else None for r in row_of], type=pa.string()
            ),
            "popularity": pa.array(counts, type=pa.int64()),
            "popularity_rank": pa.array(rank, type=pa.int64()),
            "last_interaction_at": pa.array(
                last_at.reindex(ids).astype("Int64"), type=pa.int64(), from_pandas=True
            ),
        }
    )


def _attributes_json(table: pd.DataFrame, id_column: str) -> list[str]:
    """Each row's present attributes as a JSON object, in column order."""
    records = table.drop(columns=[id_column]).to_dict("records")
    return [
        json.dumps({k: _plain(v) for k, v in record.items() if not is_missing(v)})
        for record in records
    ]


def _plain(value: object) -> object:
    """JSON-ready: sequences (lists or numpy arrays) as lists, numpy scalars as Python ones."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_atomically(table: pa.Table, path: Path) -> Path:
    """Write to a temporary file then rename, so a reader never sees half a table."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, staging)
    os.replace(staging, path)
    return path
