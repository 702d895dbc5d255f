"""The embedded event log: one SQLite file in WAL mode with ``synchronous=FULL``.

Every ``append`` is one ``BEGIN IMMEDIATE ... COMMIT`` transaction; with FULL the commit fsyncs
the WAL, so an acknowledged batch survives ``kill -9`` and a power cut. Several processes (uvicorn
workers, the consumer) may share the file: SQLite serialises writers and ``busy_timeout`` makes a
writer wait for the lock instead of failing at once.

Tables: ``events`` (``position`` AUTOINCREMENT, so positions never repeat even after
``delete_user`` removed the newest rows, and grow in commit order because writers are
serialised), ``consumer_groups`` (the last position handed to any consumer of the group) and
``pending`` (delivered, not yet acked: the at-least-once bookkeeping; an entry older than
``ack_wait_seconds`` is delivered again).

sqlite3 blocks, so each call runs in a worker thread on one connection guarded by a lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from app.events.types import AppendResult, Event, EventLogUnavailable, LoggedEvent
from app.infra.sqlite_file import SqliteFile, erase, transaction
from app.settings import EVENT_ACK_WAIT_SECONDS

# Ordered, oldest first: the n-th brings a file from schema version n-1 to n (sqlite_file).
MIGRATIONS = (
    # 1: the schema of files written before they carried a version
    """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id);
CREATE TABLE IF NOT EXISTS consumer_groups (
    group_name TEXT PRIMARY KEY,
    delivered_up_to INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    group_name TEXT NOT NULL,
    position INTEGER NOT NULL,
    consumer TEXT NOT NULL,
    delivered_at REAL NOT NULL,
    PRIMARY KEY (group_name, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pending_by_consumer ON pending (group_name, consumer, position);
""",
    # 2: overdue deliveries are found by age, whichever consumer holds them
    """
DROP INDEX IF EXISTS pending_by_consumer;
CREATE INDEX IF NOT EXISTS pending_by_age ON pending (group_name, delivered_at);
""",
)

_LAG = """
SELECT (SELECT count(*) FROM events WHERE position > coalesce(
            (SELECT delivered_up_to FROM consumer_groups WHERE group_name = :group), 0))
     + (SELECT count(*) FROM pending WHERE group_name = :group)
"""

Row = tuple[int, bytes]  # (position, payload)


class SqliteEventLog:
    """Event log in one local file; the file and its directory are created on first use."""

    backend = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int = 5000,
        ack_wait_seconds: float = EVENT_ACK_WAIT_SECONDS,
        poll_interval_seconds: float = 0.02,
    ) -> None:
        self.path = path
        self._ack_wait_seconds = ack_wait_seconds
        self._poll_interval_seconds = poll_interval_seconds
        self._db = SqliteFile(
            path,
            migrations=MIGRATIONS,
            busy_timeout_ms=busy_timeout_ms,
            synchronous="FULL",
            unavailable=lambda detail: EventLogUnavailable(f"sqlite event log {detail}"),
        )

    async def append(self, events: Sequence[Event]) -> AppendResult:
        """Insert the batch in one fsynced transaction; ``INSERT OR IGNORE`` on the unique
        ``event_id`` finds duplicates, including repeats within the batch."""
        if not events:
            return AppendResult((), ())
        return await self._db.run(lambda connection: _append(connection, events))

    async def read(
        self, consumer_group: str, consumer: str, *, count: int, block_ms: int
    ) -> list[LoggedEvent]:
        """Overdue then new events. While waiting it polls every ``poll_interval_seconds``:
        another process's commit cannot wake this one."""
        deadline = time.monotonic() + block_ms / 1000
        wait = self._ack_wait_seconds
        rows = await self._db.run(lambda c: _deliver(c, consumer_group, consumer, count, wait))
        while not rows and (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(self._poll_interval_seconds, remaining))
            # A read-only check first, so an idle consumer never takes the write lock.
            if await self._db.run(lambda c: _has_undelivered(c, consumer_group)):
                rows = await self._db.run(
                    lambda c: _deliver(c, consumer_group, consumer, count, wait)
                )
        return _logged(rows)

    async def ack(self, consumer_group: str, positions: Sequence[str]) -> None:
        """Drop the events from the group's pending set; unknown positions are ignored."""
        params = [(consumer_group, _position(text)) for text in positions]
        if params:
            await self._db.run(lambda c: _ack(c, params))

    async def lag(self, consumer_group: str) -> int:
        """Undelivered plus delivered-but-unacked events of the group."""
        row = await self._db.run(lambda c: c.execute(_LAG, {"group": consumer_group}).fetchone())
        return int(row[0])

    async def iter_all(self, after: str | None = None, limit: int = 10_000) -> list[LoggedEvent]:
        """Stored events after ``after``, oldest first."""
        start = 0 if after is None else _position(after)
        query = "SELECT position, payload FROM events WHERE position > ? ORDER BY position LIMIT ?"
        rows = await self._db.run(lambda c: c.execute(query, (start, limit)).fetchall())
        return _logged(rows)

    async def delete_user(self, user_id: str) -> int:
        """Delete the user's rows (index lookup) and their pending entries."""
        return await self._db.run(lambda c: _delete_user(c, user_id))

    async def ping(self) -> None:
        """Open (or create) the file and run a trivial query."""
        await self._db.run(lambda c: c.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        """Close the connection; a later call would reopen it."""
        await self._db.close()


def _append(connection: sqlite3.Connection, events: Sequence[Event]) -> AppendResult:
    appended: list[str] = []
    duplicates: list[str] = []
    insert = "INSERT OR IGNORE INTO events (event_id, user_id, payload) VALUES (?, ?, ?)"
    with transaction(connection):
        for event in events:
            cursor = connection.execute(insert, (event.event_id, event.user_id, event.to_bytes()))
            (appended if cursor.rowcount == 1 else duplicates).append(event.event_id)
    return AppendResult(tuple(appended), tuple(duplicates))


def _deliver(
    connection: sqlite3.Connection, group: str, consumer: str, count: int, ack_wait: float
) -> list[Row]:
    """Events pending longer than ``ack_wait`` (whoever had them), topped up with undelivered
    ones up to ``count``; all become ``consumer``'s, delivered now."""
    now = time.time()
    with transaction(connection):
        connection.execute("INSERT OR IGNORE INTO consumer_groups VALUES (?, 0)", (group,))
        rows: list[Row] = connection.execute(
            "SELECT p.position, e.payload FROM pending p JOIN events e USING (position) "
            "WHERE p.group_name = ? AND p.delivered_at <= ? ORDER BY p.position LIMIT ?",
            (group, now - ack_wait, count),
        ).fetchall()
        connection.executemany(
            "UPDATE pending SET consumer = ?, delivered_at = ? "
            "WHERE group_name = ? AND position = ?",
            [(consumer, now, group, position) for position, _ in rows],
        )
        if len(rows) < count:
            fresh: list[Row] = connection.execute(
                "SELECT position, payload FROM events WHERE position > "
                "(SELECT delivered_up_to FROM consumer_groups WHERE group_name = ?) "
                "ORDER BY position LIMIT ?",
                (group, count - len(rows)),
            ).fetchall()
            if fresh:
                connection.executemany(
                    "INSERT INTO pending VALUES (?, ?, ?, ?)",
                    [(group, position, consumer, now) for position, _ in fresh],
                )
                connection.execute(
                    "UPDATE consumer_groups SET delivered_up_to = ? WHERE group_name = ?",
                    (fresh[-1][0], group),
                )
            rows += fresh
    return rows


def _ack(connection: sqlite3.Connection, params: list[tuple[str, int]]) -> None:
    with transaction(connection):
        connection.executemany("DELETE FROM pending WHERE group_name = ? AND position = ?", params)


def _has_undelivered(connection: sqlite3.Connection, group: str) -> bool:
    row = connection.execute(
        "SELECT EXISTS (SELECT 1 FROM events WHERE position > "
        "(SELECT delivered_up_to FROM consumer_groups WHERE group_name = ?))",
        (group,),
    ).fetchone()
    return bool(row[0])


def _delete_user(connection: sqlite3.Connection, user_id: str) -> int:
    def delete(c: sqlite3.Connection) -> int:
        c.execute(
            "DELETE FROM pending WHERE position IN (SELECT position FROM events WHERE user_id = ?)",
            (user_id,),
        )
        return int(c.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount)

    return erase(connection, delete)


def _position(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a position of the SQLite event log") from None


def _logged(rows: list[Row]) -> list[LoggedEvent]:
    return [
        LoggedEvent(str(position), Event.from_bytes(payload, str(position)))
        for position, payload in rows
    ]
