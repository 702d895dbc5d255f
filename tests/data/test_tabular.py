from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.data.ingest import ingest, load_dataset
from app.data.tabular import TabularMapping, parse_columns, read_tabular
from app.data.types import DataFormatError, FieldType

COLUMNS = {"user_id": "customer", "item_id": "sku", "timestamp": "ts"}


def write_csv_shop(folder: Path) -> TabularMapping:
    (folder / "events.csv").write_text(
        "customer,sku,ts,event_type,value\n"
        "007,A-1,1700000000000,purchase,12.5\n"
        '"NA","B,2",2023-11-14T22:13:21Z,view,1\n'
        "007,A-1,1700000002,Click,1\n"
        "x,A-1,yesterday,view,1\n"
        "y,A-1\n"
    )
    (folder / "users.csv").write_text("customer,age,zip\n007,41,02134\nNA,19,10001\n")
    (folder / "items.csv").write_text('sku,price,colour\nA-1,3.5,red\n"B,2",4,blue\n')
    return TabularMapping(columns=COLUMNS, users=folder / "users.csv", items=folder / "items.csv")


def test_csv_with_mapping_ingests_ms_and_iso_timestamps(tmp_path: Path) -> None:
    mapping = write_csv_shop(tmp_path)
    report = ingest(tmp_path / "events.csv", tmp_path / "data", mapping=mapping)
    dataset = load_dataset(tmp_path / "data")
    assert list(dataset.interactions.itertuples(index=False, name=None)) == [
        ("007", "A-1", 1700000000, "purchase", 12.5),
        ("007", "A-1", 1700000002, "click", 1.0),
        ("NA", "B,2", 1700000001, "view", 1.0),
    ]
    quarantine = pd.read_csv(
        tmp_path / "data" / "quarantine" / "interactions.csv", dtype=str, keep_default_na=False
    )
    assert list(zip(quarantine["line"], quarantine["reason"], strict=True)) == [
        ("5", "invalid timestamp"),
        ("6", "wrong number of fields"),
    ]
    assert report.tables["interactions"].reasons == {
        "invalid timestamp": 1,
        "wrong number of fields": 1,
    }
    # Numbers with a leading zero stay tokens; other all-numeric columns become floats.
    assert dataset.user_fields == {"age": FieldType.FLOAT, "zip": FieldType.TOKEN}
    assert list(dataset.users["zip"]) == ["02134", "10001"]
    assert dataset.item_fields == {"price": FieldType.FLOAT, "colour": FieldType.TOKEN}


def test_parquet_with_mapping_and_typed_columns(tmp_path: Path) -> None:
    pd.DataFrame(
        {
            "customer": [1, 2, 2],
            "sku": ["p", "q", "p"],
            "ts": pd.to_datetime(
                ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"]
            ),
            "rating": [4.0, 5.0, 3.0],
        }
    ).to_parquet(tmp_path / "events.parquet")
    pd.DataFrame(
        {"sku": ["p", "q"], "tags": [["a", "b"], []], "weights": [[0.5], [1.0, 2.0]]}
    ).to_parquet(tmp_path / "items.parquet")
    mapping = TabularMapping(columns=COLUMNS, items=tmp_path / "items.parquet")
    report = ingest(tmp_path / "events.parquet", tmp_path / "data", mapping=mapping)
    dataset = load_dataset(tmp_path / "data")
    assert report.quarantined == 0
    assert list(dataset.interactions["timestamp"]) == [1704067200, 1704153600, 1704240000]
    assert list(dataset.interactions["event_type"].unique()) == ["rate"]
    assert list(dataset.interactions["user_id"]) == ["1", "2", "2"]
    assert dataset.item_fields == {"tags": FieldType.TOKEN_SEQ, "weights": FieldType.FLOAT_SEQ}
    assert dataset.items["tags"].tolist() == [["a", "b"], []]
    assert dataset.items["weights"].tolist() == [[0.5], [1.0, 2.0]]


def test_mapping_to_a_missing_column_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text("customer,product\n1,2\n")
    with pytest.raises(
        DataFormatError,
        match=r"names 'sku' \(for item_id\), 'ts' \(for timestamp\), found in no file",
    ):
        read_tabular(tmp_path / "events.csv", TabularMapping(columns=COLUMNS))


def test_unmapped_required_column_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text("user_id,product\n1,2\n")
    with pytest.raises(DataFormatError, match=r"events\.csv:1: no column for item_id"):
        read_tabular(tmp_path / "events.csv", TabularMapping())


def test_parse_columns_rejects_non_string_mappings() -> None:
    assert parse_columns('{"user_id": "customer"}') == {"user_id": "customer"}
    with pytest.raises(ValueError, match="JSON object of strings"):
        parse_columns('{"user_id": 3}')
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_columns("user_id=customer")
