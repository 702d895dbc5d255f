"""One SQLite file used from asyncio, shared by the embedded stores (event log, exposure store,
webhook outbox, consent store).

Each store keeps one connection, opened on first use, and runs every statement on a worker
thread under a lock, so the event loop never waits on the disk. Writes take the database lock
up front (``BEGIN IMMEDIATE``) so a transaction never fails half-way on a lock upgrade, and an
erasure overwrites the freed pages and empties the WAL, which would still hold them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TypeVar

T = TypeVar("T")

# Pause between attempts to set up a connection that another process's set-up locked out.
SETUP_RETRY_SECONDS = 0.01


class SqliteFile:
    """The connection of one store. ``unavailable`` turns a ``sqlite3`` or ``OSError`` (the
    directory cannot be made) into the store's own error, given a message naming the file."""

    def __init__(
        self,
        path: Path,
        *,
        schema: str,
        busy_timeout_ms: int,
        synchronous: Literal["FULL", "NORMAL"],
        unavailable: Callable[[str], Exception],
    ) -> None:
        self.path = path
        self._schema = schema
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
        schema created; ``busy_timeout_seconds`` is how long it waits for another process's
        lock."""
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
                connection.executescript(self._schema)  # IF NOT EXISTS: safe to run again
                return connection
            except sqlite3.OperationalError as exc:
                # Workers opening a new file at once: switching it to WAL while another
                # process does fails at once with "database is locked", without the busy
                # handler's wait, which cost the first write of a worker now and then.
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    connection.close()
                    raise
                time.sleep(SETUP_RETRY_SECONDS)

    async def close(self) -> None:
        """Close the connection; a later call reopens it."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


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
