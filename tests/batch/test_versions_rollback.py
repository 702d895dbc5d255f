"""Every build is a data version; a rollback makes an earlier one and its model current again,
and the engine then answers as it did on that version."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from app.artifacts import read_manifest
from app.data.synthetic import generate_shop
from app.data.versions import current_record, read_history
from app.settings import Settings
from app.training.pipeline import build
from tests.batch.conftest import home_state, run_cli


def test_rollback_restores_the_data_version_and_its_model(
    versioned_home: Settings, tmp_path: Path
) -> None:
    first = home_state(versioned_home)
    first_record = current_record(versioned_home.versions_dir)
    assert first_record is not None
    other_shop = generate_shop(
        tmp_path / "source", n_users=400, n_items=150, n_events=12_000, seed=4
    )
    second = build(versioned_home, other_shop, tuning_budget_seconds=10)
    after_second = home_state(versioned_home)
    assert second.record.data_version == first_record.data_version + 1
    assert after_second.model != first.model
    assert after_second.answers != first.answers
    manifest = read_manifest(second.model_dir)
    assert manifest.data_version == second.record.data_version
    assert manifest.table_versions == second.record.tables

    result = run_cli(
        versioned_home.home, "data", "rollback", "--to", str(first_record.data_version)
    )

    assert result.returncode == 0, result.stderr
    restored = home_state(versioned_home)
    assert restored.model == first.model
    assert restored.answers == first.answers
    rolled_back = read_history(versioned_home.versions_dir)[-1]
    assert rolled_back.outcome == "rolled back"
    assert rolled_back.tables == first_record.tables
    assert restored.data_version == rolled_back.data_version == second.record.data_version + 1
    # The tables are version 1's again (restamped at the rollback, as the online store needs).
    interactions = pq.read_table(versioned_home.data_dir / "interactions.parquet")
    assert interactions.num_rows == first_record.rows["interactions"]

    history = run_cli(versioned_home.home, "data", "history")
    assert history.returncode == 0
    assert "rolled back" in history.stdout
    assert f"to data version {first_record.data_version}" in history.stdout


def test_rollback_to_an_unknown_version_is_refused(versioned_home: Settings) -> None:
    before = current_record(versioned_home.versions_dir)

    result = run_cli(versioned_home.home, "data", "rollback", "--to", "99")

    assert result.returncode == 2
    assert "no data version 99" in result.stderr
    assert "Traceback" not in result.stderr
    assert current_record(versioned_home.versions_dir) == before
