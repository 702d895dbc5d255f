"""The embedded outbox: one SQLite file in WAL mode with ``synchronous=FULL``, shared by the
uvicorn workers of one host.

``outbox`` holds waiting deliveries with one ``due_at`` column that means "next attempt" or,
while leased, "lease end": a claim is a single ``UPDATE ... RETURNING`` on due rows inside a
``BEGIN IMMEDIATE`` transaction, which SQLite serialises across processes. ``dead_letters``
holds the parked ones. Both carry the ``user_key`` (pseudonym) of the user a body is about, for
erasure (``delete_user``: the bodies hold the raw id, so deleted rows are overwritten on disk
and the WAL is checkpointed). sqlite3 blocks, so each call runs in a worker thread on one
connection guarded by a lock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from app.infra.sqlite_file import SqliteFile, erase, transaction
from app.webhooks.types import DeadLetter, Delivery, OutboxStats, OutboxUnavailable

_COLUMNS = "delivery_id, endpoint, kind, body, created_at, attempts, last_error, user_key"
# Ordered, oldest first: the n-th brings a file from schema version n-1 to n (sqlite_file).
MIGRATIONS = (
    # 1: the schema of files written before they carried a version
    """
CREATE TABLE IF NOT EXISTS outbox (
    delivery_id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    user_key TEXT,
    due_at REAL NOT NULL,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS outbox_by_due ON outbox (due_at);
CREATE INDEX IF NOT EXISTS outbox_by_age ON outbox (created_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    delivery_id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    user_key TEXT,
    dead_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_user ON dead_letters (user_key);
""",
)

Row = tuple[str, str, str, bytes, float, int, str | None, str | None]


class SqliteOutbox:
    """Outbox in one local file; the file and its directory are created on first use."""

    backend = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        # FULL: an enqueued delivery survives a power cut, like the event that caused it.
        self._db = SqliteFile(
            path,
            migrations=MIGRATIONS,
            busy_timeout_ms=busy_timeout_ms,
            synchronous="FULL",
            unavailable=lambda detail: OutboxUnavailable(f"sqlite webhook outbox {detail}"),
        )

    async def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        return await self._db.run(lambda c: _enqueue(c, deliveries, time.time()))

    async def claim(self, worker: str, *, limit: int, lease_seconds: float) -> list[Delivery]:
        rows = await self._db.run(lambda c: _claim(c, worker, limit, lease_seconds, time.time()))
        return [_delivery(row) for row in rows]

    async def complete(self, delivery_id: str) -> None:
        await self._db.run(
            lambda c: c.execute("DELETE FROM outbox WHERE delivery_id = ?", (delivery_id,))
        )

    async def retry(
        self, delivery_id: str, worker: str, *, delay_seconds: float, error: str
    ) -> bool:
        due = time.time() + delay_seconds
        query = (
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, due_at = ?, owner = NULL "
            "WHERE delivery_id = ? AND owner = ?"
        )
        rowcount = await self._db.run(
            lambda c: c.execute(query, (error, due, delivery_id, worker)).rowcount
        )
        return bool(rowcount)

    async def dead_letter(self, delivery_id: str, worker: str, *, error: str) -> bool:
        return await self._db.run(lambda c: _bury(c, delivery_id, worker, error, time.time()))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        query = f"SELECT {_COLUMNS}, dead_at FROM dead_letters ORDER BY dead_at LIMIT ?"
        rows: list[tuple[str, str, str, bytes, float, int, str | None, str | None, float]]
        rows = await self._db.run(lambda c: c.execute(query, (limit,)).fetchall())
        return [DeadLetter(Delivery(*row[:-1]), row[-1]) for row in rows]

    async def replay(self, delivery_ids: Sequence[str] | None = None) -> int:
        return await self._db.run(lambda c: _replay(c, delivery_ids, time.time()))

    async def stats(self) -> OutboxStats:
        query = (
            "SELECT (SELECT count(*) FROM outbox), (SELECT min(created_at) FROM outbox), "
            "(SELECT count(*) FROM dead_letters)"
        )
        depth, oldest, dead = await self._db.run(lambda c: c.execute(query).fetchone())
        age = max(0.0, time.time() - oldest) if oldest is not None else 0.0
        return OutboxStats(depth=depth, oldest_age_seconds=age, dead_letters=dead)

    async def delete_user(self, user_key: str) -> int:
        return await self._db.run(lambda c: _delete_user(c, user_key))

    async def close(self) -> None:
        await self._db.close()


def _enqueue(connection: sqlite3.Connection, deliveries: Sequence[Delivery], now: float) -> int:
    rows = [
        (
            d.delivery_id,
            d.endpoint,
            d.kind,
            d.body,
            d.created_at,
            d.attempts,
            d.last_error,
            d.user_key,
            now,
        )
        for d in deliveries
    ]
    new = 0
    with transaction(connection):
        for row in rows:
            # A dead letter keeps its id: enqueueing it again would bypass the replay decision.
            cursor = connection.execute(
                f"INSERT INTO outbox ({_COLUMNS}, due_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM dead_letters WHERE delivery_id = ?) "
                "ON CONFLICT (delivery_id) DO NOTHING",
                (*row, row[0]),
            )
            new += cursor.rowcount
    return new


def _claim(
    connection: sqlite3.Connection, worker: str, limit: int, lease_seconds: float, now: float
) -> list[Row]:
    # A read-only check first, so idle workers polling never take the write lock that
    # POST /events needs to enqueue.
    due = "SELECT EXISTS (SELECT 1 FROM outbox WHERE due_at <= ?)"
    if not connection.execute(due, (now,)).fetchone()[0]:
        return []
    with transaction(connection):
        rows: list[Row] = connection.execute(
            f"UPDATE outbox SET due_at = ?, owner = ? WHERE delivery_id IN "
            f"(SELECT delivery_id FROM outbox WHERE due_at <= ? ORDER BY due_at LIMIT ?) "
            f"RETURNING {_COLUMNS}",
            (now + lease_seconds, worker, now, limit),
        ).fetchall()
    return rows


def _bury(
    connection: sqlite3.Connection, delivery_id: str, worker: str, error: str, now: float
) -> bool:
    with transaction(connection):
        moved = connection.execute(
            f"INSERT INTO dead_letters ({_COLUMNS}, dead_at) "
            f"SELECT delivery_id, endpoint, kind, body, created_at, attempts + 1, ?, user_key, ? "
            f"FROM outbox WHERE delivery_id = ? AND owner = ?",
            (error, now, delivery_id, worker),
        ).rowcount
        connection.execute(
            "DELETE FROM outbox WHERE delivery_id = ? AND owner = ?", (delivery_id, worker)
        )
    return bool(moved)


def _replay(connection: sqlite3.Connection, delivery_ids: Sequence[str] | None, now: float) -> int:
    if delivery_ids is not None and not delivery_ids:
        return 0
    params: tuple[str, ...] = () if delivery_ids is None else tuple(delivery_ids)
    # "WHERE 1" even for all rows: an INSERT ... SELECT needs a WHERE before ON CONFLICT.
    where = f"WHERE delivery_id IN ({', '.join('?' * len(params))})" if params else "WHERE 1"
    with transaction(connection):
        moved = connection.execute(
            f"INSERT INTO outbox ({_COLUMNS}, due_at) "
            f"SELECT delivery_id, endpoint, kind, body, created_at, 0, last_error, user_key, ? "
            f"FROM dead_letters {where} ON CONFLICT (delivery_id) DO NOTHING",
            (now, *params),
        ).rowcount
        connection.execute(f"DELETE FROM dead_letters {where}", params)
    return moved


def _delete_user(connection: sqlite3.Connection, user_key: str) -> int:
    # The bodies hold the raw user id: their pages must not survive the deletion.
    def delete(c: sqlite3.Connection) -> int:
        return sum(
            c.execute(f"DELETE FROM {table} WHERE user_key = ?", (user_key,)).rowcount
            for table in ("outbox", "dead_letters")
        )

    return erase(connection, delete)


def _delivery(row: Row) -> Delivery:
    return Delivery(*row)
