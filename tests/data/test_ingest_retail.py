"""Retail data through ingestion: quantity, price and basket ids kept on the interactions,
the item hierarchy kept as item attributes, and demographics for some users only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from app.data.ingest import ingest, load_dataset
from app.data.types import INTERACTION_COLUMNS, FieldType
from tests.data.conftest import AtomicWriter

INTER = [
    "user_id:token\titem_id:token\ttimestamp:float\tquantity:float\tprice:float\t"
    "basket_id:token\tstore_id:token",
    "h1\tmilk\t100\t2\t1.98\tb1\ts9",
    "h1\tbread\t100\t1\t2.50\tb1\ts9",
    "h1\tmilk\t900\t\t0.99\tb2\ts9",  # no quantity on this line: unknown, not zero
    "h2\tmilk\t300\t1\t-0.99\t\ts9",  # a refund, and no basket id
    "h2\tbread\t400\tlots\t2.50\tb3\ts9",  # quarantined: quantity is not a number
]
ITEM = [
    "item_id:token\tdepartment:token\tcategory:token\tbrand:token",
    "milk\tDAIRY\tFLUID MILK\tPrivate",
    "bread\tBAKERY\tBREAD\tNational",
]
USER = ["user_id:token\tincome:token", "h1\t50-74K"]  # h2 has no demographics row


def test_quantity_price_and_basket_ids_are_kept(tmp_path: Path, write_atomic: AtomicWriter) -> None:
    report = ingest(write_atomic(inter=INTER, item=ITEM, user=USER), tmp_path / "data")
    interactions = load_dataset(tmp_path / "data").interactions
    assert tuple(interactions.columns) == (*INTERACTION_COLUMNS, "quantity", "price", "basket_id")
    rows = interactions.set_index(["user_id", "item_id", "timestamp"])
    assert rows.loc[("h1", "milk", 100), "quantity"] == 2.0
    assert np.isnan(rows.loc[("h1", "milk", 900), "quantity"])
    assert rows.loc[("h2", "milk", 300), "price"] == -0.99
    assert rows.loc[("h1", "bread", 100), "basket_id"] == "b1"
    assert rows.loc[("h2", "milk", 300), "basket_id"] is None
    # Without a value column the price is also each line's value.
    assert rows.loc[("h1", "milk", 100), "value"] == 1.98
    table = report.tables["interactions"]
    assert table.reasons == {"invalid float in quantity": 1}
    assert table.ignored_columns == ("store_id",)


def test_the_item_hierarchy_is_kept_and_users_without_demographics_are_normal(
    tmp_path: Path, write_atomic: AtomicWriter
) -> None:
    report = ingest(write_atomic(inter=INTER, item=ITEM, user=USER), tmp_path / "data")
    dataset = load_dataset(tmp_path / "data")
    hierarchy = ("department", "category", "brand")
    assert dataset.item_fields == dict.fromkeys(hierarchy, FieldType.TOKEN)
    items = dataset.items.set_index("item_id")
    assert items.loc["milk", ["department", "category", "brand"]].tolist() == [
        "DAIRY",
        "FLUID MILK",
        "Private",
    ]
    assert report.users_without_attributes == 1
    assert set(dataset.interactions["user_id"]) == {"h1", "h2"}
    assert list(dataset.users["user_id"]) == ["h1"]


def test_data_without_retail_columns_keeps_the_canonical_layout(
    tmp_path: Path, write_atomic: AtomicWriter
) -> None:
    source = write_atomic(inter=["user_id:token\titem_id:token\ttimestamp:float", "u\ti\t1"])
    ingest(source, tmp_path / "data")
    assert tuple(load_dataset(tmp_path / "data").interactions.columns) == INTERACTION_COLUMNS


def test_logged_events_join_retail_data_with_unknown_retail_fields(
    tmp_path: Path, write_atomic: AtomicWriter
) -> None:
    events = pd.DataFrame(
        {
            "user_id": ["h2"],
            "item_id": ["bread"],
            "timestamp": [500],
            "event_type": ["purchase"],
            "value": [2.5],
        }
    )
    source = write_atomic(inter=INTER, item=ITEM, user=USER)
    ingest(source, tmp_path / "data", logged_events=events)
    interactions = load_dataset(tmp_path / "data").interactions
    (logged,) = interactions[interactions["timestamp"] == 500].itertuples(index=False)
    assert (logged.user_id, logged.event_type) == ("h2", "purchase")
    assert np.isnan(logged.quantity)
    assert logged.basket_id is None
