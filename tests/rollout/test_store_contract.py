"""One contract, both rollout record stores: SQLite under the home and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.rollout.records import ModelChange, Rollout
from app.rollout.store import RolloutStore, RolloutStoreUnavailable, SqliteRolloutStore
from app.rollout.store_postgres import PostgresRolloutStore
from app.storage.postgres import ShortConnections
from tests.conftest import POSTGRES_MARKS, TEST_DATABASE_URL

OpenStore = Callable[[], RolloutStore]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=POSTGRES_MARKS)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """Opens stores on one storage: two of them stand for two workers (or a worker and the CLI)."""

    def open_one() -> RolloutStore:
        if request.param == "postgres":
            schema = request.getfixturevalue("postgres_empty_schema")
            return PostgresRolloutStore(ShortConnections(TEST_DATABASE_URL, schema=schema))
        return SqliteRolloutStore(tmp_path / "rollout" / "rollout.db")

    return open_one


def _rollout(rollout_id: str, started_at: float) -> Rollout:
    return Rollout(
        rollout_id=rollout_id,
        challenger=f"{rollout_id}-model",
        champion="champion",
        traffic_share=0.2,
        started_at=started_at,
        status="running",
    )


def test_a_rollout_is_decided_once_whoever_decides(open_store: OpenStore) -> None:
    worker, other = open_store(), open_store()
    assert worker.start_rollout(_rollout("r1", 10.0))
    assert not other.start_rollout(_rollout("r1", 11.0)), "the id is taken"
    other.record_look("r1", {"verdict": "continue", "impressions": [300, 310]})
    assert worker.rollout("r1") == _rollout("r1", 10.0).model_copy(
        update={"last_look": {"verdict": "continue", "impressions": [300, 310]}}
    )
    assert worker.finish_rollout("r1", "rolled_back", at=20.0, decided_by="test", reason="worse")
    assert not other.finish_rollout(
        "r1", "promoted", at=21.0, decided_by="operator", reason="late"
    ), "a decided rollout is not decided again"
    other.record_look("r1", {"verdict": "promote"})  # too late: the decision's look stays
    decided = other.rollout("r1")
    assert decided is not None
    assert (decided.status, decided.decided_at, decided.decided_by, decided.reason) == (
        "rolled_back",
        20.0,
        "test",
        "worse",
    )
    assert decided.last_look["verdict"] == "continue"
    assert other.rollout("absent") is None


def test_rollouts_and_changes_list_newest_first(open_store: OpenStore) -> None:
    store = open_store()
    for n, started in enumerate((5.0, 30.0, 12.0)):
        store.start_rollout(_rollout(f"r{n}", started))
    assert [r.rollout_id for r in store.rollouts(2)] == ["r1", "r2"]
    first = ModelChange(change_id="c1", kind="publish", at=1.0, from_version=None, to_version="a")
    second = ModelChange(
        change_id="c2", kind="promotion", at=2.0, from_version="a", to_version="b", reason="won"
    )
    assert store.add_change(first)
    assert store.add_change(second)
    assert not store.add_change(first.model_copy(update={"to_version": "x"}))
    assert store.changes(10) == [second, first]
    assert store.change("c1") == first
    assert store.change("absent") is None


def test_a_report_attaches_to_its_change(open_store: OpenStore) -> None:
    writer, reader = open_store(), open_store()
    change = ModelChange(change_id="c1", kind="rollback", at=1.0, from_version="b", to_version="a")
    writer.add_change(change)
    writer.save_report("c1", {"ctr": {"before": 0.1, "after": 0.12}})
    found = reader.change("c1")
    assert found is not None
    assert found.report == {"ctr": {"before": 0.1, "after": 0.12}}


def test_an_unreachable_store_raises_its_own_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(RolloutStoreUnavailable, match="rollout records"):
        SqliteRolloutStore(blocked / "rollout.db").rollouts(1)
    postgres = PostgresRolloutStore(
        ShortConnections("postgresql://postgres@127.0.0.1:9/test", schema="absent")
    )
    with pytest.raises(RolloutStoreUnavailable, match="postgres rollout records"):
        postgres.changes(1)
