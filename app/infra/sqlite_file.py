"""One SQLite file used from asyncio, shared by the embedded stores (event log, exposure store,
webhook outbox, consent store, availability overrides).

Each store keeps one connection, opened on first use, and runs every statement on a worker
thread under a lock, so the event loop never waits on the disk. Writes take the database lock
up front (``BEGIN IMMEDIATE``) so a transaction never fails half-way on a lock upgrade, and an
erasure overwrites the freed pages and empties the WAL, which would still hold them.

Each store declares its schema as an ordered list of migrations: the n-th brings a file from
schema version n-1 to n, the version kept in the file itself (``PRAGMA user_version``). Opening
a file applies the ones it lacks in one transaction, so a file written by an earlier release is
upgraded in place with its rows, and a file from a later release (a version beyond the list) is
refused rather than misread. Version 1 is the schema files had before they were versioned
(``CREATE ... IF NOT EXISTS``: such a file, at version 0, already holds it).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TypeVar

T = TypeVar("T")

# Pause between attempts to set up a connection that another process's set-up locked out.
SETUP_RETRY_SECONDS = 0.01


class SchemaTooNewError(sqlite3.DatabaseError):
    """The file's schema version is beyond every migration this release knows."""


class SqliteFile:
    """The connection of one store. ``unavailable`` turns a ``sqlite3`` or ``OSError`` (the
    directory cannot be made) into the store's own error, given a message naming the file."""

    def __init__(
        self,
        path: Path,
        *,
        migrations: Sequence[str],
        busy_timeout_ms: int,
        synchronous: Literal["FULL", "NORMAL"],
        unavailable: Callable[[str], Exception],
    ) -> None:
        self.path = path
        self._migrations = migrations
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = synchronous
        self._unavailable = unavailable
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` on a worker thread, one at a time."""
        return await asyncio.to_thread(self.locked, work)

    def locked(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` on this thread, under the lock."""
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = self.connect(self._busy_timeout_ms / 1000)
                return work(self._connection)
            except (sqlite3.Error, OSError) as exc:
                raise self._unavailable(f"{self.path}: {exc}") from exc

    def connect(self, busy_timeout_seconds: float) -> sqlite3.Connection:
        """A new connection in autocommit mode (transactions are explicit), WAL journal, the
        schema migrated to the current version; ``busy_timeout_seconds`` is how long it waits
        for another process's lock. Raises ``SchemaTooNewError`` for a file of a later
        release."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=busy_timeout_seconds,
        )
        deadline = time.monotonic() + busy_timeout_seconds
        while True:
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute(f"PRAGMA synchronous = {self._synchronous}")
                migrate(connection, self._migrations)
                return connection
            except sqlite3.OperationalError as exc:
                # Workers opening a new file at once: switching it to WAL while another
                # process does fails at once with "database is locked", without the busy
                # handler's wait, which cost the first write of a worker now and then.
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    connection.close()
                    raise
                time.sleep(SETUP_RETRY_SECONDS)
            except BaseException:
                connection.close()
                raise

    async def close(self) -> None:
        """Close the connection; a later call reopens it."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def schema_version(connection: sqlite3.Connection) -> int:
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    return int(version)


def migrate(connection: sqlite3.Connection, migrations: Sequence[str]) -> None:
    """Apply the migrations the file lacks, all in one transaction with the new version: a
    failing one leaves the file as it was, and of several processes opening it at once one
    migrates while the others wait for its lock and then find nothing left to do."""
    current = len(migrations)
    if schema_version(connection) < current:  # else no write lock is taken
        with transaction(connection):
            for script in migrations[schema_version(connection) :]:
                for statement in _statements(script):
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {current}")
    version = schema_version(connection)
    if version > current:
        raise SchemaTooNewError(
            f"schema version {version} is newer than this release's {current}: the file was "
            "written by a later recserve; run that release, or restore a backup from this one"
        )


def _statements(script: str) -> Iterator[str]:
    """The script's statements one by one (``executescript`` would commit the transaction)."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                yield pending
            pending = ""
    if pending.strip(" \n\t;"):
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()!r}")


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """A write transaction holding the database lock from its start; rolled back on any
    error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        # SQLite rolls back by itself on some errors (a full disk, an I/O error); a second
        # rollback would fail and hide the error that matters.
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def erase(connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """``work`` in a transaction whose deleted rows are overwritten on disk, then the WAL
    folded in and emptied (best effort: a reader in another process can delay it)."""
    connection.execute("PRAGMA secure_delete = ON")
    try:
        with transaction(connection):
            result = work(connection)
    finally:
        connection.execute("PRAGMA secure_delete = OFF")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return result
