"""The SQLite online store file disappears and comes back under a running server."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from app.features.store import sqlite_path
from app.settings import Settings
from tests.integration.conftest import copy_home, metric, serve, users_with_history

pytestmark = pytest.mark.integration


def _answer(http: httpx.Client, user_id: str) -> tuple[str, str | None]:
    started = time.perf_counter()
    response = http.get("/recommend", params={"user_id": user_id})
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 200, response.text
    body = response.json()
    return body["source"], body["fallback_reason"]


def _feature_store_state(http: httpx.Client) -> tuple[bool, bool, str]:
    ready = http.get("/readyz").json()
    store = ready["dependencies"]["feature_store"]
    return ready["degraded"], store["ok"], store["detail"]


def test_online_store_removed_then_restored(built_home: Settings, tmp_path: Path) -> None:
    settings = copy_home(built_home, tmp_path / "home")
    users = users_with_history(settings)
    database = sqlite_path(settings)
    # The build's connection may still be open in this process, with rows in the copied
    # write-ahead log: fold them into the file, which is what this test moves around.
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    saved = tmp_path / "online.db.saved"
    with serve(settings.home) as http:
        assert _answer(http, users[0]) == ("personalized", None)

        database.rename(saved)  # the server's open SQLite handle could still read it

        for user in users[1:4]:
            assert _answer(http, user) == ("popular", "feature_store_error")
        degraded, store_ok, detail = _feature_store_state(http)
        assert (degraded, store_ok) == (True, False)
        assert f"{database} is missing" in detail
        assert not database.exists()  # nothing created an empty store in its place

        # A file that is not the store (an interrupted copy): read, not the old handle.
        database.write_bytes(b"")
        assert _answer(http, users[4]) == ("popular", "feature_store_error")
        assert "no such table" in _feature_store_state(http)[2]

        # Restored as a new file (a new inode), the way a copy or a rebuild puts it back.
        staged = tmp_path / "online.db.staged"
        shutil.copyfile(saved, staged)
        os.replace(staged, database)

        assert _answer(http, users[5]) == ("personalized", None)
        assert _feature_store_state(http)[:2] == (False, True)


def test_online_store_locked_then_released(built_home: Settings, tmp_path: Path) -> None:
    """A store put in place while another process still holds it exclusively locked (a
    restore still writing): each read waits only the bounded busy timeout and falls back,
    then reads again once the lock is released."""
    settings = copy_home(built_home, tmp_path / "home")
    users = users_with_history(settings)
    database = sqlite_path(settings)
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # see the test above
    staged = tmp_path / "online.db.staged"
    shutil.copyfile(database, staged)
    with serve(settings.home) as http:
        assert _answer(http, users[0]) == ("personalized", None)
        fallbacks_before = _fallbacks(http)

        with closing(sqlite3.connect(staged, isolation_level=None)) as locker:
            # A WAL reader cannot be locked out of a file other connections have open, so the
            # lock is taken on the copy, which then replaces the store (a new inode the server
            # opens on its next read).
            locker.execute("PRAGMA locking_mode=EXCLUSIVE")
            locker.execute("BEGIN EXCLUSIVE")
            os.replace(staged, database)
            for user in users[1:6]:
                assert _answer(http, user) == ("popular", "feature_store_error")
            degraded, store_ok, detail = _feature_store_state(http)
            assert (degraded, store_ok) == (True, False)
            assert "database is locked" in detail
            assert _fallbacks(http) >= fallbacks_before + 5
            locker.execute("ROLLBACK")

        assert _answer(http, users[6]) == ("personalized", None)
        assert _feature_store_state(http)[:2] == (False, True)


def _fallbacks(http: httpx.Client) -> float:
    # A delta, not a level: the metrics of servers started earlier by the same test process
    # can be aggregated into this one's (Feast points prometheus_client at one shared directory).
    text = http.get("/metrics").text
    return metric(text, "recserve_serving_fallbacks_total", reason="feature_store_error")
