"""The durable webhook outbox: one interface, three backends, and the factory that picks one.

Backends: ``outbox_sqlite`` (embedded default, a WAL file under the home), ``outbox_redis``
(shared by every host when ``RECSERVE_REDIS_URL`` is set) and ``outbox_postgres`` (the database
of record, when ``RECSERVE_DATABASE_URL`` is set). ``tests/webhooks/test_outbox_contract.py``
is the contract all pass.

Claim/lease: each delivery has a due time. ``claim`` takes due deliveries and pushes their due
time to the end of a lease in the same atomic step, so two workers (uvicorn processes or hosts)
never hold one delivery at once; a worker that dies mid-delivery loses it when the lease ends
and another worker sends it again. Delivery is therefore at-least-once: receivers dedupe on
the delivery id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from app.infra.redis_client import redis_client
from app.settings import Settings
from app.webhooks.outbox_redis import RedisOutbox
from app.webhooks.outbox_sqlite import SqliteOutbox
from app.webhooks.types import DeadLetter, Delivery, OutboxStats

SQLITE_FILE = "outbox.db"

T = TypeVar("T")


class Outbox(Protocol):
    backend: str  # metric label: "sqlite", "redis" or "postgres"

    async def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        """Store the deliveries durably, due now; an id already waiting or dead is left as it
        is. Returns how many were new. Raises ``OutboxUnavailable`` when nothing was stored."""
        ...

    async def claim(self, worker: str, *, limit: int, lease_seconds: float) -> list[Delivery]:
        """Up to ``limit`` due deliveries, oldest due first, leased to ``worker``: nobody else
        gets them for ``lease_seconds`` unless ``retry``/``dead_letter`` release them."""
        ...

    async def complete(self, delivery_id: str) -> None:
        """The receiver accepted it: forget it (a no-op for an unknown id)."""
        ...

    async def retry(
        self, delivery_id: str, worker: str, *, delay_seconds: float, error: str
    ) -> bool:
        """Count a failed attempt and make it due again in ``delay_seconds``. False (and no
        change) when ``worker`` no longer holds the lease."""
        ...

    async def dead_letter(self, delivery_id: str, worker: str, *, error: str) -> bool:
        """Count the last failed attempt and move it to the dead-letter store. False (and no
        change) when ``worker`` no longer holds the lease."""
        ...

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Parked deliveries, oldest dead first."""
        ...

    async def replay(self, delivery_ids: Sequence[str] | None = None) -> int:
        """Move the named dead letters (all when None) back to the outbox, due now with their
        attempt count reset; returns how many moved. Unknown ids are ignored."""
        ...

    async def stats(self) -> OutboxStats:
        """Depth, oldest age and dead letters, for the gauges."""
        ...

    async def delete_user(self, user_key: str) -> int:
        """Delete the waiting and dead-lettered deliveries whose ``user_key`` is ``user_key``
        (an erasure); returns how many. One being sent at that moment may still arrive: its
        worker's later report then changes nothing."""
        ...

    async def close(self) -> None:
        """Release connections; the outbox must not be used afterwards."""
        ...


def open_outbox(settings: Settings) -> Outbox:
    """PostgreSQL when ``settings.database_url`` is set, else Redis when ``settings.redis_url``
    is set, else SQLite under ``settings.webhooks_dir``. No I/O here; the first call connects.
    The Redis client is the outbox's own: its calls run off the request path's tight socket
    timeout, since only enqueue sits on the request path."""
    if settings.database_url is not None:
        # Imported here: psycopg is the optional extra `postgres`.
        from app.storage.postgres import database_from_settings
        from app.webhooks.outbox_postgres import PostgresOutbox, unavailable

        return PostgresOutbox(database_from_settings(settings, unavailable))
    if settings.redis_url is None:
        return SqliteOutbox(
            settings.webhooks_dir / SQLITE_FILE,
            busy_timeout_ms=settings.events.sqlite_busy_timeout_ms,
        )
    client = redis_client(
        settings.redis_url,
        socket_timeout=settings.events.socket_timeout_seconds,
        connect_timeout=settings.redis.connect_timeout_seconds,
    )
    return RedisOutbox(client, key_prefix=settings.webhooks.redis_key_prefix)


def run_with_outbox(settings: Settings, work: Callable[[Outbox], Awaitable[T]]) -> T:
    """For commands outside the server: open the configured outbox, run ``work`` on it in a
    fresh event loop, close it."""

    async def run() -> T:
        outbox = open_outbox(settings)
        try:
            return await work(outbox)
        finally:
            await outbox.close()

    return asyncio.run(run())
