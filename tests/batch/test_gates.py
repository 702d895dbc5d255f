"""The refusal checks on their own: each threshold refuses just past its limit, not before."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.batch.gates import BuildRefused, check_ingest, schema_drift
from app.data.report import IngestReport, TableSummary
from app.data.versions import BuildRecord
from app.settings import BuildGateSettings

COLUMNS = {"interactions": ("user_id", "item_id", "timestamp")}


def _report(
    read: int, accepted: int, columns: dict[str, tuple[str, ...]] = COLUMNS
) -> IngestReport:
    return IngestReport(
        source="shop",
        data_dir="data",
        tables={"interactions": TableSummary(read, accepted, read - accepted)},
        distinct_users=1,
        distinct_items=1,
        users_without_attributes=0,
        time_min=None,
        time_max=None,
        fingerprint="sha256:0",
        seconds=0.0,
        source_columns=COLUMNS,
    )


def _previous(interactions: int) -> BuildRecord:
    now = datetime.now(UTC)
    return BuildRecord(
        run_id="r",
        started_at=now,
        finished_at=now,
        outcome="published",
        data_version=4,
        rows={"interactions": interactions},
        source_columns={name: list(cols) for name, cols in COLUMNS.items()},
    )


def test_quarantined_share_refuses_past_the_limit() -> None:
    gates = BuildGateSettings(max_quarantined_percent=20)
    assert check_ingest(_report(100, 80), None, gates, "") == []
    with pytest.raises(BuildRefused, match=r"21\.0% of the input rows were quarantined"):
        check_ingest(_report(100, 79), None, gates, "; rows kept in Q")


def test_interaction_drop_refuses_past_the_limit() -> None:
    gates = BuildGateSettings(max_interaction_drop_percent=50)
    assert check_ingest(_report(500, 500), _previous(1000), gates, "") == []
    with pytest.raises(BuildRefused, match=r"dropped by 50\.1% \(1000 in data version 4, 499"):
        check_ingest(_report(499, 499), _previous(1000), gates, "")
    unlimited = BuildGateSettings(max_interaction_drop_percent=100)
    assert check_ingest(_report(1, 1), _previous(1000), unlimited, "") == []


def test_schema_drift_names_the_columns_and_tables() -> None:
    before = {"interactions": ["user_id", "item_id", "value"], "items": ["item_id"]}
    after = {"interactions": ("user_id", "item_id", "amount"), "users": ("user_id",)}
    assert schema_drift(before, after) == [
        "interactions: column(s) value missing",
        "interactions: new column(s) amount",
        "table items is gone",
        "table users is new",
    ]
    assert schema_drift({}, after) == []  # a version recorded without columns


def test_empty_input_is_refused_even_with_every_limit_off() -> None:
    gates = BuildGateSettings(max_quarantined_percent=100, max_interaction_drop_percent=100)
    with pytest.raises(BuildRefused, match=r"no interactions accepted \(0 read"):
        check_ingest(_report(0, 0), None, gates, "")
