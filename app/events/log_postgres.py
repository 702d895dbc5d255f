"""The event log in PostgreSQL, the system of record shared by every host.

Tables (``app/storage/postgres/migrations``): ``events`` range-partitioned by day of append, so
retention drops whole days (``DROP TABLE``, no row-by-row delete, no bloat); ``event_ids``, the
unique ids (a unique constraint on the partitioned table would have to include the day, which
would dedupe only within a day); ``event_consumer_groups`` (how far each group has been handed
events) and ``event_pending`` (delivered, not yet acked).

Appends serialise on a transaction-level advisory lock. Positions come from a sequence, and a
group's high-water mark is only safe if positions become visible in order: without the lock a
batch holding position 5 could commit after one holding 6 had been delivered, and the group
would never see 5. Consumers of one group serialise on the group's row (``FOR UPDATE``).

A blocking ``read`` polls: PostgreSQL has no blocking read of a table, and a poll every
``poll_interval_seconds`` is one index probe.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Sequence

from app.events.types import AppendResult, Event, EventLogUnavailable, LoggedEvent
from app.storage.postgres import PostgresDatabase
from app.storage.postgres.database import Connection

# Names among the database's advisory locks (any fixed numbers, distinct from the migration's).
APPEND_LOCK = 0x65766C31  # "evl1"
PARTITION_LOCK = 0x65766C32  # "evl2"
PARTITION_NAME = re.compile(r"^events_(\d{8})$")

_LAG = """
SELECT (SELECT count(*) FROM events WHERE position > coalesce(
            (SELECT delivered_up_to FROM event_consumer_groups WHERE group_name = %(group)s), 0))
     + (SELECT count(*) FROM event_pending WHERE group_name = %(group)s)
"""

Row = tuple[int, bytes]  # (position, payload)


class PostgresEventLog:
    """Event log in the records' schema; daily partitions are created ``days_ahead`` ahead."""

    backend = "postgres"

    def __init__(
        self,
        database: PostgresDatabase,
        *,
        days_ahead: int = 7,
        poll_interval_seconds: float = 0.02,
    ) -> None:
        self._db = database
        self._days_ahead = days_ahead
        self._poll_interval_seconds = poll_interval_seconds
        self._partitions_until: dt.date | None = None

    async def append(self, events: Sequence[Event]) -> AppendResult:
        """Store the batch's new ids in one transaction: the id table says which are new (its
        primary key decides between concurrent writers), the events table takes those."""
        if not events:
            return AppendResult((), ())
        await self._ensure_partitions()
        first: dict[str, Event] = {}
        for event in events:
            first.setdefault(event.event_id, event)
        async with self._db.transaction() as connection:
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
            cursor = await connection.execute(
                "INSERT INTO event_ids (event_id, appended_at) SELECT unnest(%s::text[]), now() "
                "ON CONFLICT DO NOTHING RETURNING event_id",
                (list(first),),
            )
            new = {row[0] for row in await cursor.fetchall()}
            stored = [event for event in first.values() if event.event_id in new]
            # unnest keeps array order and there is no sort, so positions follow the batch.
            await connection.execute(
                "INSERT INTO events (position, event_id, user_id, payload) "
                "SELECT nextval('event_positions'), e, u, p "
                "FROM unnest(%s::text[], %s::text[], %s::bytea[]) AS t(e, u, p)",
                (
                    [event.event_id for event in stored],
                    [event.user_id for event in stored],
                    [event.to_bytes() for event in stored],
                ),
            )
        appended = tuple(event.event_id for event in stored)
        duplicates = []
        seen: set[str] = set()
        for event in events:
            if event.event_id in seen or event.event_id not in new:
                duplicates.append(event.event_id)
            seen.add(event.event_id)
        return AppendResult(appended, tuple(duplicates))

    async def read(
        self, consumer_group: str, consumer: str, *, count: int, block_ms: int
    ) -> list[LoggedEvent]:
        """Pending-then-new events for ``consumer``, polling while ``block_ms`` lasts."""
        deadline = time.monotonic() + block_ms / 1000
        rows = await self._deliver(consumer_group, consumer, count)
        while not rows and (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(self._poll_interval_seconds, remaining))
            # A read-only probe first, so an idle consumer never locks the group's row.
            if await self._has_undelivered(consumer_group):
                rows = await self._deliver(consumer_group, consumer, count)
        return _logged(rows)

    async def claim_idle(
        self, consumer_group: str, consumer: str, *, min_idle_ms: int, count: int
    ) -> list[LoggedEvent]:
        """Move events pending for at least ``min_idle_ms`` (database clock) to ``consumer``."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "WITH idle AS (SELECT position FROM event_pending WHERE group_name = %(g)s "
                "AND delivered_at <= now() - make_interval(secs => %(idle)s) "
                "ORDER BY position LIMIT %(n)s FOR UPDATE) "
                "UPDATE event_pending p SET consumer = %(c)s, delivered_at = now() FROM idle "
                "WHERE p.group_name = %(g)s AND p.position = idle.position RETURNING p.position",
                {"g": consumer_group, "c": consumer, "idle": min_idle_ms / 1000, "n": count},
            )
            positions = sorted(row[0] for row in await cursor.fetchall())
            rows = await _payloads(connection, positions)
        return _logged(rows)

    async def ack(self, consumer_group: str, positions: Sequence[str]) -> None:
        """Drop the events from the group's pending set; unknown positions are ignored."""
        numbers = [_position(text) for text in positions]
        if not numbers:
            return
        async with self._db.transaction() as connection:
            await connection.execute(
                "DELETE FROM event_pending WHERE group_name = %s AND position = ANY(%s)",
                (consumer_group, numbers),
            )

    async def lag(self, consumer_group: str) -> int:
        """Undelivered plus delivered-but-unacked events of the group."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(_LAG, {"group": consumer_group})
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def iter_all(self, after: str | None = None, limit: int = 10_000) -> list[LoggedEvent]:
        """Stored events after ``after``, oldest first."""
        start = 0 if after is None else _position(after)
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "SELECT position, payload FROM events WHERE position > %s "
                "ORDER BY position LIMIT %s",
                (start, limit),
            )
            rows: list[Row] = await cursor.fetchall()
        return _logged(rows)

    async def delete_user(self, user_id: str) -> int:
        """Delete the user's events, their pending entries and their ids, in one transaction.
        The dead row versions go at the next (auto)vacuum of the partitions."""
        async with self._db.transaction() as connection:
            await connection.execute(
                "DELETE FROM event_pending WHERE position IN "
                "(SELECT position FROM events WHERE user_id = %s)",
                (user_id,),
            )
            cursor = await connection.execute(
                "DELETE FROM events WHERE user_id = %s RETURNING event_id", (user_id,)
            )
            erased = [row[0] for row in await cursor.fetchall()]
            await connection.execute(
                "DELETE FROM event_ids WHERE event_id = ANY(%s)", (erased,)
            )
        return len(erased)

    async def drop_days_before(self, day: dt.date) -> list[str]:
        """Retention: drop every daily partition wholly before ``day`` (UTC), with the ids and
        pending entries of its events; return the partitions dropped."""
        cutoff = dt.datetime.combine(day, dt.time(), dt.UTC)
        async with self._db.transaction() as connection:
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
            cursor = await connection.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'events'::regclass"
            )
            names = [row[0] for row in await cursor.fetchall()]
            old = sorted(name for name in names if _partition_day(name) < day)
            for name in old:
                await connection.execute(
                    f"DELETE FROM event_pending WHERE position IN (SELECT position FROM {name})"
                )
                await connection.execute(f"DROP TABLE {name}")
            await connection.execute("DELETE FROM event_ids WHERE appended_at < %s", (cutoff,))
        return old

    async def ping(self) -> None:
        """One trivial query through the pool."""
        async with self._db.transaction() as connection:
            await connection.execute("SELECT 1")

    async def close(self) -> None:
        """Close the pool; the log must not be used afterwards."""
        await self._db.close()

    async def _ensure_partitions(self) -> None:
        """Create the partitions from yesterday (a clock behind the database's) to
        ``days_ahead`` ahead, once a day per process."""
        today = dt.datetime.now(dt.UTC).date()
        if self._partitions_until is not None and self._partitions_until > today:
            return
        last = today + dt.timedelta(days=self._days_ahead)
        async with self._db.transaction() as connection:
            # Two processes creating the same partition would collide on its name.
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
            day = today - dt.timedelta(days=1)
            while day <= last:
                following = day + dt.timedelta(days=1)
                await connection.execute(
                    f"CREATE TABLE IF NOT EXISTS events_{day:%Y%m%d} PARTITION OF events "
                    f"FOR VALUES FROM ('{day.isoformat()} 00:00+00') "
                    f"TO ('{following.isoformat()} 00:00+00')"
                )
                day = following
        self._partitions_until = last

    async def _deliver(self, group: str, consumer: str, count: int) -> list[Row]:
        """The consumer's own pending events, topped up with undelivered ones up to ``count``."""
        async with self._db.transaction() as connection:
            await connection.execute(
                "INSERT INTO event_consumer_groups VALUES (%s, 0) ON CONFLICT DO NOTHING",
                (group,),
            )
            cursor = await connection.execute(
                "SELECT delivered_up_to FROM event_consumer_groups WHERE group_name = %s "
                "FOR UPDATE",
                (group,),
            )
            mark = await cursor.fetchone()
            delivered_up_to = int(mark[0]) if mark else 0
            cursor = await connection.execute(
                "UPDATE event_pending SET delivered_at = now() WHERE (group_name, position) IN "
                "(SELECT group_name, position FROM event_pending WHERE group_name = %s "
                "AND consumer = %s ORDER BY position LIMIT %s) RETURNING position",
                (group, consumer, count),
            )
            mine = sorted(row[0] for row in await cursor.fetchall())
            rows = await _payloads(connection, mine)
            if len(rows) < count:
                cursor = await connection.execute(
                    "SELECT position, payload FROM events WHERE position > %s "
                    "ORDER BY position LIMIT %s",
                    (delivered_up_to, count - len(rows)),
                )
                fresh: list[Row] = await cursor.fetchall()
                if fresh:
                    await connection.execute(
                        "INSERT INTO event_pending (group_name, position, consumer, delivered_at) "
                        "SELECT %s, unnest(%s::bigint[]), %s, now()",
                        (group, [position for position, _ in fresh], consumer),
                    )
                    await connection.execute(
                        "UPDATE event_consumer_groups SET delivered_up_to = %s "
                        "WHERE group_name = %s",
                        (fresh[-1][0], group),
                    )
                rows += fresh
        return rows

    async def _has_undelivered(self, group: str) -> bool:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "SELECT EXISTS (SELECT 1 FROM events WHERE position > coalesce("
                "(SELECT delivered_up_to FROM event_consumer_groups WHERE group_name = %s), 0))",
                (group,),
            )
            row = await cursor.fetchone()
        return bool(row and row[0])


async def _payloads(connection: Connection, positions: list[int]) -> list[Row]:
    if not positions:
        return []
    cursor = await connection.execute(
        "SELECT position, payload FROM events WHERE position = ANY(%s) ORDER BY position",
        (positions,),
    )
    return await cursor.fetchall()


def _partition_day(name: str) -> dt.date:
    match = PARTITION_NAME.match(name)
    if match is None:  # not one of ours: never dropped
        return dt.date.max
    return dt.datetime.strptime(match.group(1), "%Y%m%d").date()


def _position(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a position of the PostgreSQL event log") from None


def _logged(rows: list[Row]) -> list[LoggedEvent]:
    return [
        LoggedEvent(str(position), Event.from_bytes(bytes(payload), str(position)))
        for position, payload in rows
    ]


def unavailable(detail: str) -> EventLogUnavailable:
    """The log's error for a database that cannot be reached or refused the statement."""
    return EventLogUnavailable(f"postgres event log {detail}")
