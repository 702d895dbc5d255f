"""The webhook outbox in PostgreSQL, shared by every worker of every host.

Same shape as the SQLite outbox: ``webhook_outbox`` holds waiting deliveries with one
``due_at`` meaning "next attempt" or, while leased, "lease end"; ``webhook_dead_letters`` the
parked ones. A claim is one ``UPDATE ... RETURNING`` over due rows picked ``FOR UPDATE SKIP
LOCKED``, so concurrent workers take disjoint deliveries without waiting on each other. Times
are the database's clock (``now``), so hosts with drifting clocks still agree on leases.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.storage.postgres import PostgresDatabase
from app.webhooks.types import DeadLetter, Delivery, OutboxStats, OutboxUnavailable

_COLUMNS = "delivery_id, endpoint, kind, body, created_at, attempts, last_error, user_key"
_NOW = "extract(epoch FROM clock_timestamp())::double precision"


class PostgresOutbox:
    """Outbox in the records' schema; owns ``database``."""

    backend = "postgres"

    def __init__(self, database: PostgresDatabase) -> None:
        self._db = database

    async def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        columns = list(zip(*(_values(d) for d in deliveries), strict=True))
        async with self._db.transaction() as connection:
            # A dead letter keeps its id: enqueueing it again would bypass the replay decision.
            cursor = await connection.execute(
                f"INSERT INTO webhook_outbox ({_COLUMNS}, due_at) "
                f"SELECT t.*, {_NOW} FROM unnest(%s::text[], %s::text[], %s::text[], "
                "%s::bytea[], %s::float8[], %s::int[], %s::text[], %s::text[]) "
                f"AS t({_COLUMNS}) WHERE NOT EXISTS (SELECT 1 FROM webhook_dead_letters d "
                "WHERE d.delivery_id = t.delivery_id) ON CONFLICT (delivery_id) DO NOTHING",
                [list(column) for column in columns],
            )
            return cursor.rowcount

    async def claim(self, worker: str, *, limit: int, lease_seconds: float) -> list[Delivery]:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                f"UPDATE webhook_outbox o SET due_at = {_NOW} + %s, owner = %s "
                "FROM (SELECT delivery_id, due_at FROM webhook_outbox "
                f"WHERE due_at <= {_NOW} ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED) due "
                f"WHERE o.delivery_id = due.delivery_id RETURNING {_qualified('o')}, due.due_at",
                (lease_seconds, worker, limit),
            )
            rows = await cursor.fetchall()
        # RETURNING follows no order: sort by the due time the claim replaced.
        return [Delivery(*row[:-1]) for row in sorted(rows, key=lambda row: row[-1])]

    async def complete(self, delivery_id: str) -> None:
        async with self._db.transaction() as connection:
            await connection.execute(
                "DELETE FROM webhook_outbox WHERE delivery_id = %s", (delivery_id,)
            )

    async def retry(
        self, delivery_id: str, worker: str, *, delay_seconds: float, error: str
    ) -> bool:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = %s, "
                f"due_at = {_NOW} + %s, owner = NULL WHERE delivery_id = %s AND owner = %s",
                (error, delay_seconds, delivery_id, worker),
            )
            return bool(cursor.rowcount)

    async def dead_letter(self, delivery_id: str, worker: str, *, error: str) -> bool:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "WITH gone AS (DELETE FROM webhook_outbox WHERE delivery_id = %s AND owner = %s "
                f"RETURNING *) INSERT INTO webhook_dead_letters ({_COLUMNS}, dead_at) "
                "SELECT delivery_id, endpoint, kind, body, created_at, attempts + 1, %s, "
                f"user_key, {_NOW} FROM gone",
                (delivery_id, worker, error),
            )
            return bool(cursor.rowcount)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                f"SELECT {_COLUMNS}, dead_at FROM webhook_dead_letters ORDER BY dead_at LIMIT %s",
                (limit,),
            )
            rows = await cursor.fetchall()
        return [DeadLetter(Delivery(*row[:-1]), row[-1]) for row in rows]

    async def replay(self, delivery_ids: Sequence[str] | None = None) -> int:
        if delivery_ids is not None and not delivery_ids:
            return 0
        where, params = (
            ("", ())
            if delivery_ids is None
            else ("WHERE delivery_id = ANY(%s)", (list(delivery_ids),))
        )
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                f"WITH back AS (DELETE FROM webhook_dead_letters {where} RETURNING *) "
                f"INSERT INTO webhook_outbox ({_COLUMNS}, due_at) "
                "SELECT delivery_id, endpoint, kind, body, created_at, 0, last_error, user_key, "
                f"{_NOW} FROM back ON CONFLICT (delivery_id) DO NOTHING",
                params,
            )
            return cursor.rowcount

    async def stats(self) -> OutboxStats:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "SELECT (SELECT count(*) FROM webhook_outbox), "
                f"{_NOW} - (SELECT min(created_at) FROM webhook_outbox), "
                "(SELECT count(*) FROM webhook_dead_letters)"
            )
            row = await cursor.fetchone()
        depth, age, dead = row if row else (0, None, 0)
        return OutboxStats(depth=depth, oldest_age_seconds=max(0.0, age or 0.0), dead_letters=dead)

    async def delete_user(self, user_key: str) -> int:
        async with self._db.transaction() as connection:
            erased = 0
            for table in ("webhook_outbox", "webhook_dead_letters"):
                cursor = await connection.execute(
                    f"DELETE FROM {table} WHERE user_key = %s", (user_key,)
                )
                erased += cursor.rowcount
            return erased

    async def close(self) -> None:
        await self._db.close()


def _values(d: Delivery) -> tuple[object, ...]:
    return (
        d.delivery_id,
        d.endpoint,
        d.kind,
        d.body,
        d.created_at,
        d.attempts,
        d.last_error,
        d.user_key,
    )


def _qualified(alias: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in _COLUMNS.split(","))


def unavailable(detail: str) -> OutboxUnavailable:
    """The outbox's error for a database that cannot be reached or refused the statement."""
    return OutboxUnavailable(f"postgres webhook outbox {detail}")
