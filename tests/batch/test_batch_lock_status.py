"""One batch run at a time per home; ``recserve status`` tells the last build and what is in
use; a segment run on nobody is refused and leaves the segments in use."""

from __future__ import annotations

import pyarrow.parquet as pq

from app.batch.lock import batch_lock
from app.data.versions import current_record
from app.settings import Settings
from tests.batch.conftest import run_cli


def test_a_second_concurrent_build_refuses(versioned_home: Settings) -> None:
    with batch_lock(versioned_home.home, "build"):
        result = run_cli(versioned_home.home, "build", "--data", "/nonexistent")

    assert result.returncode == 3
    assert "another batch run holds" in result.stderr
    assert "build not started" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_lock_is_free_again_after_a_run(versioned_home: Settings) -> None:
    with batch_lock(versioned_home.home, "build"):
        pass
    with batch_lock(versioned_home.home, "build"):
        pass  # would raise BatchBusy if the first had kept it


def test_status_names_the_last_build_data_version_and_model(versioned_home: Settings) -> None:
    record = current_record(versioned_home.versions_dir)
    assert record is not None

    result = run_cli(versioned_home.home, "status")

    assert result.returncode == 0, result.stderr
    assert "last build: " in result.stdout
    assert ", published" in result.stdout
    assert f"data version: {record.data_version} " in result.stdout
    assert f"model: {record.model_version}" in result.stdout
    assert "event log lag: 0 events not yet copied" in result.stdout


def test_segment_on_nobody_is_refused_and_keeps_the_segments(versioned_home: Settings) -> None:
    behaviour = versioned_home.offline_dir / "user_behaviour.parquet"
    segments = versioned_home.offline_dir / "user_segments.parquet"
    original = behaviour.read_bytes()
    segments_before = segments.read_bytes()
    pq.write_table(pq.read_table(behaviour).slice(0, 0), behaviour)
    try:
        result = run_cli(versioned_home.home, "segment")
    finally:
        behaviour.write_bytes(original)

    assert result.returncode == 2
    assert "no user has an interaction" in result.stderr
    assert "Traceback" not in result.stderr
    assert segments.read_bytes() == segments_before


def test_a_segment_refresh_is_a_new_data_version(versioned_home: Settings) -> None:
    before = current_record(versioned_home.versions_dir)
    assert before is not None

    result = run_cli(versioned_home.home, "segment", "--clusters", "3")

    assert result.returncode == 0, result.stderr
    after = current_record(versioned_home.versions_dir)
    assert after is not None
    assert after.outcome == "segments refreshed"
    assert after.data_version == before.data_version + 1
    assert after.tables["user_segments"] == before.tables["user_segments"] + 1
    assert {k: v for k, v in after.tables.items() if k != "user_segments"} == {
        k: v for k, v in before.tables.items() if k != "user_segments"
    }
    assert after.model_version == before.model_version
    assert f"data version {after.data_version}" in result.stdout
