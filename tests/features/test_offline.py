from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from app.data.types import Dataset, FieldType
from app.features.offline import build_feature_tables, pick_category_field
from app.features.schema import (
    EVENT_TIMESTAMP,
    HISTORY_MAX_ITEMS,
    ITEM_FEATURES,
    USER_ATTRIBUTE_FEATURES,
    USER_BEHAVIOUR_FEATURES,
)
from tests.features.factories import AS_OF, DAY, A


def _rows(path, key):
    """Rows by id, without the event timestamp (checked once, below)."""
    table = pq.read_table(path).drop_columns([EVENT_TIMESTAMP])
    return {row.pop(key): row for row in table.to_pylist()}


@pytest.fixture
def built(dataset, tmp_path):
    return build_feature_tables(dataset, tmp_path, as_of=AS_OF)


def test_writes_three_tables_with_the_schema_columns_and_as_of_stamp(built, tmp_path):
    expected = {
        "user_attributes": ["user_id", *USER_ATTRIBUTE_FEATURES],
        "user_behaviour": ["user_id", *USER_BEHAVIOUR_FEATURES],
        "item_features": ["item_id", *ITEM_FEATURES],
    }
    for view, columns in expected.items():
        table = pq.read_table(tmp_path / f"{view}.parquet")
        assert table.column_names == [*columns, EVENT_TIMESTAMP]
        assert set(table.column(EVENT_TIMESTAMP).to_pylist()) == {AS_OF}
    assert built.rows == {"user_attributes": 3, "user_behaviour": 2, "item_features": 5}
    assert built.interactions_after_as_of == 1
    assert built.category_field == "category"
    assert built.user_quantile_edges == {"income": (18.0, 26.0, 34.0, 42.0)}


def test_attributes_only_for_users_table_members(built, tmp_path):
    rows = _rows(tmp_path / "user_attributes.parquet", "user_id")

    assert set(rows) == {"u1", "u2", "u3"}  # u4 has interactions only
    assert rows["u1"]["attribute_tokens"] == [
        "age=20s",
        "gender=F",
        "income=q1",
        "hobbies=chess",
        "hobbies=go",
    ]
    assert json.loads(rows["u1"]["attributes_json"]) == {
        "age": "24",
        "gender": "F",
        "income": 10.0,
        "hobbies": ["chess", "go"],
    }
    assert json.loads(rows["u3"]["attributes_json"]) == {"age": "67", "hobbies": ["chess"]}


def test_behaviour_history_rfm_and_affinity(built, tmp_path):
    rows = _rows(tmp_path / "user_behaviour.parquet", "user_id")

    assert set(rows) == {"u1", "u4"}  # u2, u3 never interacted
    u1 = rows["u1"]
    # i1 was seen at -40d and -10d: kept once, at its last time; the -10d tie breaks by id.
    assert u1.pop("history_items") == ["i2", "i1", "i3"]
    assert u1.pop("history_timestamps") == [A - 20 * DAY, A - 10 * DAY, A - 10 * DAY]
    assert u1.pop("top_category_scores") == pytest.approx([0.75, 0.25])
    assert u1 == {
        "interaction_count": 4,  # the purchase after as_of is left out
        "recency_days": 10.0,
        "frequency_30d": 3,  # -40d is outside the window
        "monetary": 20.0,
        "last_event_at": A - 10 * DAY,
        "top_categories": ["books", "music"],
    }
    u4 = rows["u4"]
    assert u4["history_items"] == ["i9", "i4"]
    assert (u4["monetary"], u4["recency_days"], u4["frequency_30d"]) == (5.0, 1.0, 3)
    assert u4["top_categories"] == []  # neither i9 nor i4 has a category
    assert u4["top_category_scores"] == []


def test_item_popularity_rank_and_catalogue_gaps(built, tmp_path):
    rows = _rows(tmp_path / "item_features.parquet", "item_id")

    assert {i: (r["popularity"], r["popularity_rank"]) for i, r in rows.items()} == {
        "i1": (2, 1),
        "i9": (2, 2),  # ties rank by id
        "i2": (1, 3),
        "i3": (1, 4),
        "i4": (1, 5),
    }
    assert rows["i1"]["category"] == "books"
    assert rows["i1"]["attribute_tokens"] == ["category=books", "price=q1"]
    assert rows["i1"]["last_interaction_at"] == A - 10 * DAY
    assert rows["i4"]["category"] is None
    assert rows["i4"]["attribute_tokens"] == []  # blank category, NaN price
    assert rows["i9"]["attributes_json"] is None  # interacted, not catalogued
    assert rows["i9"]["attribute_tokens"] == []


def test_history_is_capped_to_the_newest_items(tmp_path):
    n = HISTORY_MAX_ITEMS + 7
    interactions = pd.DataFrame(
        {
            "user_id": "u",
            "item_id": [f"item{k:04d}" for k in range(n)],
            "timestamp": A - DAY - np.arange(n, 0, -1),  # item0000 oldest
            "event_type": "view",
            "value": 1.0,
        }
    )
    dataset = Dataset(interactions, pd.DataFrame(), pd.DataFrame())

    build_feature_tables(dataset, tmp_path, as_of=AS_OF)

    history = _rows(tmp_path / "user_behaviour.parquet", "user_id")["u"]["history_items"]
    assert history == [f"item{k:04d}" for k in range(7, n)]
    assert _rows(tmp_path / "user_behaviour.parquet", "user_id")["u"]["interaction_count"] == n


def test_top_categories_keep_five_best_from_sequence_categories(tmp_path):
    genres = [["a", "b"], ["b"], ["c"], ["d"], ["e"], ["f"], ["b", "g"]]
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(7)], "genre": genres})
    interactions = pd.DataFrame(
        {
            "user_id": "u",
            "item_id": [f"i{k}" for k in range(7)],
            "timestamp": A - np.arange(7),
            "event_type": "view",
            "value": 1.0,
        }
    )
    dataset = Dataset(
        interactions, pd.DataFrame(), items, item_fields={"genre": FieldType.TOKEN_SEQ}
    )

    build_feature_tables(dataset, tmp_path, as_of=AS_OF)

    row = _rows(tmp_path / "user_behaviour.parquet", "user_id")["u"]
    # b in 3 of 7 interactions; the 1-of-7 ties break by name.
    assert row["top_categories"] == ["b", "a", "c", "d", "e"]
    assert row["top_category_scores"] == pytest.approx([3 / 7] + [1 / 7] * 4)
    items_out = _rows(tmp_path / "item_features.parquet", "item_id")
    assert items_out["i6"]["category"] == "b"  # first element of a sequence


def test_category_field_prefers_category_like_names():
    assert (
        pick_category_field({"title": FieldType.TOKEN_SEQ, "class": FieldType.TOKEN_SEQ}) == "class"
    )
    assert pick_category_field({"price": FieldType.FLOAT, "brand": FieldType.TOKEN}) == "brand"
    assert pick_category_field({"price": FieldType.FLOAT}) is None


def test_naive_as_of_is_rejected(dataset, tmp_path):
    with pytest.raises(ValueError, match="timezone-aware"):
        build_feature_tables(dataset, tmp_path, as_of=datetime(2024, 1, 31))


def test_missing_interaction_column_is_named(dataset, tmp_path):
    dataset.interactions = dataset.interactions.drop(columns=["event_type"])

    with pytest.raises(ValueError, match="event_type"):
        build_feature_tables(dataset, tmp_path, as_of=AS_OF)
