"""The embedded stores' shared SQLite file, opened by several worker processes at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.infra.sqlite_file import SqliteFile

PROCESSES = 4
TRIALS = 30
SCHEMA = "CREATE TABLE IF NOT EXISTS writes (process INTEGER NOT NULL);"


def _first_write(path: Path, process: int, start: Any) -> None:
    """Open the file as a worker does on its first request, and write once."""
    store = SqliteFile(
        path,
        schema=SCHEMA,
        busy_timeout_ms=5000,
        synchronous="NORMAL",
        unavailable=RuntimeError,
    )
    start.wait()
    store.locked(lambda c: c.execute("INSERT INTO writes VALUES (?)", (process,)))


def test_workers_opening_a_new_file_at_once_all_write(tmp_path: Path) -> None:
    """Switching a new file to WAL fails at once, without the busy timeout's wait, while
    another process does the same; every worker's first write must still land."""
    context = multiprocessing.get_context("fork")
    for trial in range(TRIALS):
        path = tmp_path / f"trial-{trial}.sqlite3"
        start = context.Barrier(PROCESSES)
        workers = [
            context.Process(target=_first_write, args=(path, n, start)) for n in range(PROCESSES)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert [w.exitcode for w in workers] == [0] * PROCESSES, f"trial {trial}"
        with sqlite3.connect(path) as check:
            assert check.execute("SELECT count(*) FROM writes").fetchone() == (PROCESSES,)


def test_a_file_that_stays_locked_is_reported_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "held.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process mid-way through its set-up
    store = SqliteFile(
        path,
        schema=SCHEMA,
        busy_timeout_ms=200,
        synchronous="NORMAL",
        unavailable=RuntimeError,
    )
    try:
        with pytest.raises(RuntimeError, match="database is locked") as raised:
            store.locked(lambda c: c.execute("SELECT 1"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(path) in str(raised.value)
