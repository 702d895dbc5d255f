from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from app.data.atomic import INTERACTION_KEYS, INTERACTIONS_TABLE, read_atomic_file
from app.data.ingest import QUARANTINE_DIR, ingest, load_dataset, read_fingerprint
from app.data.sources import TABULAR_VALIDATED_HERE
from app.data.types import INTERACTION_COLUMNS, DataFormatError, FieldType
from app.data.validate import ValidatedTable, validate_interactions
from tests.data.conftest import BADSHOP, AtomicWriter


def test_round_trip_restores_types_and_lists(tmp_path: Path) -> None:
    report = ingest(BADSHOP, tmp_path / "data")
    dataset = load_dataset(tmp_path / "data")
    interactions = dataset.interactions
    assert tuple(interactions.columns) == INTERACTION_COLUMNS
    assert interactions["timestamp"].dtype == "int64"
    assert interactions["value"].dtype == "float64"
    assert all(isinstance(x, str) for x in interactions["user_id"])
    # Sorted by (user_id, timestamp, item_id).
    assert list(interactions["user_id"]) == ["0042", "0042", "u7", "u7", "u9"]
    assert list(interactions["timestamp"])[2:4] == [881250957, 1700000000]
    assert dataset.item_fields == {
        "title": FieldType.TOKEN_SEQ,
        "price": FieldType.FLOAT,
        "tags": FieldType.FLOAT_SEQ,
    }
    items = dataset.items.set_index("item_id")
    assert items.loc["007", "title"] == ["Licence", "To", "Kill"]
    assert items.loc["007", "tags"] == [1.0, 2.5]
    assert dataset.user_fields["age"] is FieldType.TOKEN
    assert report.fingerprint == read_fingerprint(tmp_path / "data")


def test_summary_and_quarantine_files_match_the_report(tmp_path: Path) -> None:
    report = ingest(BADSHOP, tmp_path / "data")
    summary = json.loads((tmp_path / "data" / "summary.json").read_text())
    inter = summary["tables"]["interactions"]
    assert (inter["rows_read"], inter["accepted"], inter["quarantined"]) == (17, 5, 12)
    assert inter["reasons"]["invalid float in rating"] == 3
    assert summary["users_without_attributes"] == 1  # u9 has events but no user row
    assert summary["distinct_users"] == 3
    assert summary["time_range"] == ["1997-12-04T15:55:49Z", "2023-11-14T22:13:20Z"]
    assert summary == json.loads(json.dumps(report.to_dict()))
    for table in ("interactions", "users", "items"):
        quarantine = pd.read_csv(tmp_path / "data" / QUARANTINE_DIR / f"{table}.csv", dtype=str)
        assert len(quarantine) == report.tables[table].quarantined
    text = report.format()
    assert "interactions: 17 read, 5 accepted, 12 quarantined" in text
    assert "quarantine/interactions.csv" in text


def test_fingerprint_is_stable_and_tracks_content(
    tmp_path: Path, write_atomic: AtomicWriter
) -> None:
    first = ingest(BADSHOP, tmp_path / "a").fingerprint
    assert ingest(BADSHOP, tmp_path / "b").fingerprint == first
    changed = write_atomic(inter=["user_id:token\titem_id:token\ttimestamp:float", "u\ti\t1"])
    assert ingest(changed, tmp_path / "c").fingerprint != first


def test_reingest_replaces_and_a_failed_ingest_keeps_previous_data(
    tmp_path: Path, write_atomic: AtomicWriter
) -> None:
    data_dir = tmp_path / "data"
    ingest(BADSHOP, data_dir)
    small = write_atomic(inter=["user_id:token\titem_id:token\ttimestamp:float", "u\ti\t1"])
    ingest(small, data_dir)
    assert not (data_dir / QUARANTINE_DIR).exists()  # nothing left over from the first ingest
    assert len(load_dataset(data_dir).interactions) == 1

    broken = write_atomic(name="broken", inter=["user_id:token\titem_id", "u\ti"])
    with pytest.raises(DataFormatError):
        ingest(broken, data_dir)
    assert len(load_dataset(data_dir).interactions) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_load_dataset_without_ingest_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run ingest first"):
        load_dataset(tmp_path)


def test_quarantine_csv_cells_never_run_as_spreadsheet_formulas(
    tmp_path: Path, write_atomic: AtomicWriter
) -> None:
    hostile = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)"]
    rows = [f"{cell}\ti1\tnot-a-time" for cell in hostile]
    header = "user_id:token\titem_id:token\ttimestamp:float"
    source = write_atomic(inter=[header, "u1\ti1\t1700000000", *rows])
    ingest(source, tmp_path / "data")
    path = tmp_path / "data" / QUARANTINE_DIR / "interactions.csv"
    quarantine = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert sorted(quarantine["user_id"]) == sorted("'" + cell for cell in hostile)
    for line in path.read_text().splitlines():
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in line.split(","))


class RecordingValidator:
    """An engine's interactions validator that records its calls and validates in process."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, list[str], list[str] | None]] = []

    def __call__(
        self, path: Path, fields: dict[str, FieldType], known_items: pd.Index | None, now: int
    ) -> ValidatedTable:
        known = None if known_items is None else sorted(known_items)
        self.calls.append((path, list(fields), known))
        raw = read_atomic_file(path, INTERACTIONS_TABLE, INTERACTION_KEYS)
        return validate_interactions(raw, known_items, now)


def test_an_engine_validates_the_interactions_of_an_atomic_source(tmp_path: Path) -> None:
    validator = RecordingValidator()
    on_engine = ingest(BADSHOP, tmp_path / "engine", interactions_validator=validator)
    local = ingest(BADSHOP, tmp_path / "local")
    accepted_items = sorted(load_dataset(tmp_path / "local").items["item_id"])
    assert validator.calls == [
        (
            BADSHOP / "badshop.inter",
            ["user_id", "item_id", "rating", "timestamp"],
            accepted_items,
        )
    ]
    assert on_engine.fingerprint == local.fingerprint
    assert on_engine.source_columns == local.source_columns
    assert on_engine.notes == local.notes


def test_a_tabular_source_is_validated_here_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text("user_id,item_id,timestamp\nu,a,5\n")
    validator = RecordingValidator()
    report = ingest(tmp_path / "events.csv", tmp_path / "data", interactions_validator=validator)
    assert validator.calls == []
    assert report.tables["interactions"].accepted == 1
    assert TABULAR_VALIDATED_HERE in report.notes
    assert TABULAR_VALIDATED_HERE not in ingest(tmp_path / "events.csv", tmp_path / "b").notes
