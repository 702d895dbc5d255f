"""The embedded stores' shared SQLite file: opened by several worker processes at once, and
upgraded in place by its store's ordered migrations."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.infra.sqlite_file import SchemaTooNewError, SqliteFile, schema_version

PROCESSES = 4
TRIALS = 30
MIGRATIONS = ("CREATE TABLE IF NOT EXISTS writes (process INTEGER NOT NULL);",)


def _first_write(path: Path, process: int, start: Any) -> None:
    """Open the file as a worker does on its first request, and write once."""
    store = SqliteFile(
        path,
        migrations=MIGRATIONS,
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
        migrations=MIGRATIONS,
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


# A store's history: version 1 as files were before versioning, then two later changes.
NOTES_V1 = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"
NOTES = (
    NOTES_V1,
    "ALTER TABLE notes ADD COLUMN author TEXT NOT NULL DEFAULT 'unknown';",
    """
    CREATE TABLE authors (name TEXT PRIMARY KEY);
    INSERT INTO authors SELECT DISTINCT author FROM notes;
    """,
)


def notes_file(path: Path, migrations: tuple[str, ...] = NOTES) -> SqliteFile:
    return SqliteFile(
        path,
        migrations=migrations,
        busy_timeout_ms=1000,
        synchronous="NORMAL",
        unavailable=RuntimeError,
    )


def written_before_versions(path: Path) -> None:
    """A file as a release without schema versions left it: the old DDL, rows, version 0."""
    with sqlite3.connect(path) as old:
        old.executescript(NOTES_V1)
        old.executemany("INSERT INTO notes (text) VALUES (?)", [("first",), ("second",)])
    with sqlite3.connect(path) as check:
        assert schema_version(check) == 0


def test_a_file_written_before_versions_is_upgraded_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    written_before_versions(path)

    rows = notes_file(path).locked(
        lambda c: c.execute("SELECT id, text, author FROM notes ORDER BY id").fetchall()
    )

    assert rows == [(1, "first", "unknown"), (2, "second", "unknown")]
    with sqlite3.connect(path) as check:
        assert schema_version(check) == len(NOTES)
        assert check.execute("SELECT name FROM authors").fetchall() == [("unknown",)]


def test_a_new_file_starts_at_the_current_version_and_reopens_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    notes_file(path).locked(lambda c: c.execute("INSERT INTO notes (text) VALUES ('a')"))

    reopened = notes_file(path).locked(lambda c: (schema_version(c), _count(c, "notes")))

    assert reopened == (len(NOTES), 1)


def test_only_the_missing_migrations_run(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    notes_file(path, NOTES[:2]).locked(
        lambda c: c.execute("INSERT INTO notes (text, author) VALUES ('a', 'ann')")
    )

    authors = notes_file(path).locked(lambda c: c.execute("SELECT name FROM authors").fetchall())

    assert authors == [("ann",)]  # the third ran over the second's rows; the second not again


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    written_before_versions(path)
    broken = (*NOTES[:2], "CREATE TABLE authors (name TEXT); INSERT INTO nowhere VALUES (1);")

    with pytest.raises(RuntimeError, match="no such table: nowhere"):
        notes_file(path, broken).locked(lambda c: c.execute("SELECT 1"))

    with sqlite3.connect(path) as check:
        assert schema_version(check) == 0
        columns = [row[1] for row in check.execute("PRAGMA table_info(notes)")]
        assert columns == ["id", "text"]
        assert _count(check, "notes") == 2


def test_a_file_of_a_later_release_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    notes_file(path).locked(lambda c: c.execute("INSERT INTO notes (text) VALUES ('a')"))

    with pytest.raises(RuntimeError) as refused:
        notes_file(path, NOTES[:1]).locked(lambda c: c.execute("SELECT 1"))

    assert isinstance(refused.value.__cause__, SchemaTooNewError)
    message = str(refused.value)
    assert str(path) in message
    assert "schema version 3 is newer than this release's 1" in message
    with sqlite3.connect(path) as check:
        assert (schema_version(check), _count(check, "notes")) == (len(NOTES), 1)


def _upgrade(path: Path, start: Any) -> None:
    start.wait()
    notes_file(path).locked(lambda c: c.execute("SELECT 1"))


def test_workers_opening_an_old_file_at_once_upgrade_it_once(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    written_before_versions(path)
    context = multiprocessing.get_context("fork")
    start = context.Barrier(PROCESSES)
    workers = [context.Process(target=_upgrade, args=(path, start)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)

    assert [w.exitcode for w in workers] == [0] * PROCESSES
    with sqlite3.connect(path) as check:
        assert schema_version(check) == len(NOTES)
        assert _count(check, "notes") == 2  # an ALTER run twice would have failed a worker


def _count(connection: sqlite3.Connection, table: str) -> int:
    (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(count)
