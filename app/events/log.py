"""The durable event log: one interface by role, and the factory that picks a backend.

Backends: ``log_sqlite`` (embedded default, one local file), ``log_redis`` (a Redis Stream
shared by several API workers and consumer processes), ``log_nats`` (a NATS JetStream stream
on a broker) and ``log_postgres`` (daily-partitioned tables in the database of record). A
Kafka or RabbitMQ Streams backend implements the same protocol;
``tests/events/test_log_contract.py`` is its contract.

Delivery is at-least-once per consumer group: ``read`` hands each new event to one consumer of
the group and keeps it pending until ``ack``; pending events come back to the same consumer on
its next ``read``, or to another via ``claim_idle`` when their consumer died.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.events.log_redis import RedisEventLog
from app.events.log_sqlite import SqliteEventLog
from app.events.types import AppendResult, Event, LoggedEvent
from app.infra.redis_client import RedisClient, redis_client
from app.settings import Settings

SQLITE_FILE = "events.db"


class EventLog(Protocol):
    """Append-only, deduplicated, durable store of events with consumer groups."""

    backend: str  # metric and readiness label: "sqlite", "redis", "nats" or "postgres"

    async def append(self, events: Sequence[Event]) -> AppendResult:
        """Store the new events of ``events`` in one round trip and return once they are
        durable; ids already logged (or repeated within ``events``) are reported as duplicates,
        not stored again. Raises ``EventLogUnavailable`` when nothing could be stored."""
        ...

    async def read(
        self, consumer_group: str, consumer: str, *, count: int, block_ms: int
    ) -> list[LoggedEvent]:
        """Up to ``count`` events for ``consumer``: first those it was given before and has not
        acked, then new ones for the group, oldest first. Waits up to ``block_ms`` when there is
        nothing. An unknown group is created and starts at the beginning of the log."""
        ...

    async def claim_idle(
        self, consumer_group: str, consumer: str, *, min_idle_ms: int, count: int
    ) -> list[LoggedEvent]:
        """Take over up to ``count`` events pending in the group for at least ``min_idle_ms``
        (their consumer crashed); they become ``consumer``'s pending events."""
        ...

    async def ack(self, consumer_group: str, positions: Sequence[str]) -> None:
        """Mark events (by ``LoggedEvent.position``) as processed by the group."""
        ...

    async def lag(self, consumer_group: str) -> int:
        """Events appended but not yet acked by the group (all of them for an unknown group)."""
        ...

    async def iter_all(self, after: str | None = None, limit: int = 10_000) -> list[LoggedEvent]:
        """Replay: up to ``limit`` stored events after position ``after`` (from the start when
        None), oldest first. Pass the last position back to page; an empty list is the end."""
        ...

    async def delete_user(self, user_id: str) -> int:
        """Erase every stored event of ``user_id`` and forget their ids (so nothing derived from
        them remains); return how many. A later append of such an id is stored as new."""
        ...

    async def ping(self) -> None:
        """Return when the backend answers; raise ``EventLogUnavailable`` when it does not."""
        ...

    async def close(self) -> None:
        """Release connections; the log must not be used afterwards."""
        ...


def open_event_log(settings: Settings, client: RedisClient | None = None) -> EventLog:
    """The backend ``settings.events.backend`` names; unset, PostgreSQL when
    ``settings.database_url`` is set, else the Redis Stream log when the event log has a Redis
    URL, else SQLite under ``settings.events_dir``. No I/O happens here; the first call
    connects. ``client`` overrides the client built from the URL (the log takes
    ownership of it)."""
    config = settings.events
    redis_url = settings.redis_url_for("event_log")
    backend = config.backend or (
        "postgres"
        if settings.database_url is not None
        else "sqlite"
        if redis_url is None
        else "redis"
    )
    if backend == "nats":
        # Imported here: nats-py is the optional extra `nats`.
        from app.events.log_nats import NatsEventLog

        return NatsEventLog(
            config.nats_url,
            stream=config.nats_stream,
            dedupe_window_seconds=config.dedupe_window_seconds,
            timeout_seconds=config.socket_timeout_seconds,
        )
    if backend == "postgres":
        # Imported here: psycopg is the optional extra `postgres`.
        from app.events.log_postgres import PostgresEventLog, unavailable
        from app.storage.postgres import database_from_settings

        return PostgresEventLog(
            database_from_settings(settings, unavailable),
            days_ahead=settings.database.event_partition_days_ahead,
        )
    if backend == "sqlite":
        return SqliteEventLog(
            settings.events_dir / SQLITE_FILE, busy_timeout_ms=config.sqlite_busy_timeout_ms
        )
    if redis_url is None:
        raise ValueError("RECSERVE_EVENTS__BACKEND=redis needs RECSERVE_REDIS_URL")
    # No retries: a failed append is answered 503 and the client retries the batch, which
    # the dedupe keys make safe; a hidden retry would only stretch the latency bound.
    return RedisEventLog(
        client
        or redis_client(
            redis_url,
            socket_timeout=config.socket_timeout_seconds,
            connect_timeout=settings.redis.connect_timeout_seconds,
        ),
        stream_key=config.stream_key,
        dedupe_window_seconds=config.dedupe_window_seconds,
        max_stream_length=config.max_stream_length,
    )
