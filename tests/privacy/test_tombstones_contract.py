"""One contract, both erasure lists: the file under the home and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.privacy.tombstones import ErasureList, Tombstones, TombstonesUnavailable
from app.privacy.tombstones_postgres import PostgresTombstones
from app.storage.postgres import ShortConnections
from tests.conftest import POSTGRES_MARKS, TEST_DATABASE_URL

OpenTombstones = Callable[[], Tombstones]


@pytest.fixture(params=["file", pytest.param("postgres", marks=POSTGRES_MARKS)])
def open_tombstones(request: pytest.FixtureRequest, tmp_path: Path) -> OpenTombstones:
    """Opens lists on one storage: two of them stand for two hosts (or a host and the build)."""

    def open_one() -> Tombstones:
        if request.param == "postgres":
            schema = request.getfixturevalue("postgres_empty_schema")
            return PostgresTombstones(ShortConnections(TEST_DATABASE_URL, schema=schema))
        return ErasureList(tmp_path / "privacy")

    return open_one


def test_an_erasure_is_seen_by_another_reader(open_tombstones: OpenTombstones) -> None:
    writer, reader = open_tombstones(), open_tombstones()
    assert reader.erased() == {}
    assert reader.erased_at("p1") is None
    writer.add("p1", 100.0)
    writer.add("p2", 200.5)
    assert reader.erased() == {"p1": 100.0, "p2": 200.5}
    assert reader.erased_at("p2") == 200.5
    assert reader.erased_at("p3") is None


def test_a_repeated_erasure_keeps_the_latest_time(open_tombstones: OpenTombstones) -> None:
    tombstones = open_tombstones()
    tombstones.add("p1", 100.0)
    tombstones.add("p1", 300.0)
    assert tombstones.erased() == {"p1": 300.0}
    assert tombstones.erased_at("p1") == 300.0


def test_an_unreachable_database_raises_an_os_error_the_erasure_reports() -> None:
    tombstones = PostgresTombstones(
        ShortConnections("postgresql://postgres@127.0.0.1:9/test", schema="absent")
    )
    with pytest.raises(TombstonesUnavailable, match="postgres erasure tombstones"):
        tombstones.add("p1", 1.0)
    with pytest.raises(OSError, match="postgres erasure tombstones"):
        tombstones.erased()
