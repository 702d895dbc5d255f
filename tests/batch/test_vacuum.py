"""``recserve data vacuum --keep N`` removes the table versions and models only older data
versions need, keeps everything the newest N need, and never touches what is served."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable

from app.artifacts import current_version
from app.data.synthetic import generate_shop
from app.data.versions import BuildRecord, current_record, read_history, table_location
from app.settings import Settings
from app.training.pipeline import build
from app.training.segment_job import refresh_segments
from tests.batch.conftest import home_state, run_cli


def _readable(settings: Settings, record: BuildRecord) -> dict[str, bool]:
    readable = {}
    for name, version in record.tables.items():
        location = table_location(settings.versions_dir, name)
        try:
            DeltaTable(location, version=version).to_pyarrow_table()
        except (FileNotFoundError, OSError):
            readable[name] = False
        else:
            readable[name] = True
    return readable


def _record(settings: Settings, data_version: int) -> BuildRecord:
    return next(r for r in read_history(settings.versions_dir) if r.data_version == data_version)


@pytest.fixture(scope="module")
def three_versions(versioned_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Data version 1 (the session's build), 2 (a build of another shop: a new model) and 3
    (a segment refresh: new segments, version 2's model and other tables)."""
    shop = generate_shop(
        tmp_path_factory.mktemp("other"), n_users=200, n_items=80, n_events=4_000, seed=8
    )
    smaller_allowed = versioned_home.build_gates.model_copy(
        update={"max_interaction_drop_percent": 100.0}
    )
    build(
        versioned_home.model_copy(update={"build_gates": smaller_allowed}),
        shop,
        tuning_budget_seconds=5,
    )
    refresh_segments(versioned_home, clusters=3)
    assert [r.data_version for r in read_history(versioned_home.versions_dir)] == [1, 2, 3]
    return versioned_home


def test_vacuum_keeps_the_last_versions_and_drops_the_older_ones(three_versions: Settings) -> None:
    settings = three_versions
    first, second, third = (_record(settings, v) for v in (1, 2, 3))
    assert first.model_version != second.model_version == third.model_version
    served = home_state(settings)

    result = run_cli(settings.home, "data", "vacuum", "--keep", "2")

    assert result.returncode == 0, result.stderr
    assert "kept data versions 2, 3; dropped 1" in result.stdout
    assert all(_readable(settings, second).values())
    assert all(_readable(settings, third).values())
    # Version 1's tables were all replaced by version 2's: none of them is readable now.
    assert not any(_readable(settings, first).values())
    assert first.model_version is not None
    assert not (settings.model_root / first.model_version).exists()
    assert (settings.model_root / str(second.model_version)).is_dir()
    assert home_state(settings) == served

    refused = run_cli(settings.home, "data", "rollback", "--to", "1")
    assert refused.returncode == 2
    assert "data version 1 was vacuumed" in refused.stderr
    assert current_record(settings.versions_dir) == third


def test_vacuum_to_one_version_keeps_the_current_model_and_what_it_reads(
    three_versions: Settings,
) -> None:
    settings = three_versions
    second, third = _record(settings, 2), _record(settings, 3)
    served = home_state(settings)

    result = run_cli(settings.home, "data", "vacuum", "--keep", "1")

    assert result.returncode == 0, result.stderr
    assert "kept data versions 3; dropped 2" in result.stdout
    assert all(_readable(settings, third).values())
    # Version 2 shares every table but its segments with version 3, and its model.
    readable = _readable(settings, second)
    assert readable.pop("user_segments") is False
    assert all(readable.values())
    assert current_version(settings.model_root) == third.model_version
    assert (settings.model_root / str(third.model_version)).is_dir()
    assert home_state(settings) == served


def test_vacuum_never_drops_the_current_version(three_versions: Settings) -> None:
    before = current_record(three_versions.versions_dir)

    result = run_cli(three_versions.home, "data", "vacuum", "--keep", "0")

    assert result.returncode == 2
    assert "--keep must be at least 1" in result.stderr
    assert current_record(three_versions.versions_dir) == before
