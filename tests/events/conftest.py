"""Event factory and the event-log fixtures: SQLite in a temp dir, Redis (one server and a
cluster) under a unique key,
NATS JetStream under a unique stream name, PostgreSQL in the test run's schema."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest

from app.events.log import EventLog
from app.events.log_nats import NatsEventLog
from app.events.log_postgres import PostgresEventLog, unavailable
from app.events.log_redis import RedisEventLog
from app.events.log_sqlite import SqliteEventLog
from app.events.types import Event, EventType
from app.infra.redis_client import redis_client
from tests.conftest import POSTGRES_MARKS, delete_redis_keys, postgres_database

REDIS_URL = os.environ.get("RECSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REDIS_MARKS = [pytest.mark.redis, pytest.mark.integration]
NATS_URL = os.environ.get("RECSERVE_TEST_NATS_URL", "nats://127.0.0.1:4222")
NATS_MARKS = [pytest.mark.nats, pytest.mark.integration]

RedisLogFactory = Callable[..., Awaitable[RedisEventLog]]


def make_event(
    event_id: str,
    user_id: str = "u1",
    item_id: str = "i1",
    *,
    type: EventType = "view",
    value: float | None = None,
    context: dict[str, Any] | None = None,
) -> Event:
    """A valid event that happened a minute ago."""
    return Event(event_id, user_id, item_id, type, time.time() - 60, value, context)


@pytest.fixture
async def make_redis_log() -> AsyncIterator[RedisLogFactory]:
    """Build RedisEventLogs on one stream key unique to this test, on the test Redis or (``url``)
    a cluster; delete its keys afterwards."""
    stream_key = f"test:events:{uuid.uuid4().hex}"
    built: list[RedisEventLog] = []
    urls = {REDIS_URL}

    async def make(
        socket_timeout: float = 2.0,
        max_stream_length: int | None = None,
        dedupe_window_seconds: int = 3600,
        url: str = REDIS_URL,
    ) -> RedisEventLog:
        urls.add(url)
        log = RedisEventLog(
            redis_client(url, socket_timeout=socket_timeout, connect_timeout=socket_timeout),
            stream_key=stream_key,
            dedupe_window_seconds=dedupe_window_seconds,
            max_stream_length=max_stream_length,
        )
        built.append(log)
        return log

    yield make
    for log in built:
        await log.close()
    for url in urls:
        await delete_redis_keys(f"{stream_key}*", url)


@pytest.fixture
async def make_nats_log() -> AsyncIterator[Callable[[], NatsEventLog]]:
    """Build NatsEventLogs on one stream unique to this test; delete it and its buckets
    afterwards."""
    stream = f"TEST_{uuid.uuid4().hex}"
    built: list[NatsEventLog] = []

    def make() -> NatsEventLog:
        log = NatsEventLog(NATS_URL, stream=stream, dedupe_window_seconds=3600, timeout_seconds=2)
        built.append(log)
        return log

    yield make
    for log in built:
        await log.close()
    await delete_nats_stream(NATS_URL, stream)


async def delete_nats_stream(url: str, stream: str) -> None:
    """Remove a NATS event log's stream and key-value buckets (those that exist)."""
    connection = await nats.connect(url)
    js = connection.jetstream(timeout=2)
    for name in (stream, f"KV_{stream}_groups", f"KV_{stream}_erasures"):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
    await connection.close()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "events" / "events.db"


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=REDIS_MARKS),
        pytest.param("redis-cluster", marks=REDIS_MARKS),
        pytest.param("nats", marks=NATS_MARKS),
        pytest.param("postgres", marks=POSTGRES_MARKS),
    ]
)
async def open_log(
    request: pytest.FixtureRequest,
    sqlite_path: Path,
    make_redis_log: RedisLogFactory,
    make_nats_log: Callable[[], NatsEventLog],
) -> AsyncIterator[Callable[[], Awaitable[EventLog]]]:
    """Opens logs on the same storage: two of them stand for two processes sharing it."""
    closing: list[EventLog] = []

    async def open_one() -> EventLog:
        if request.param == "redis":
            return await make_redis_log()
        if request.param == "redis-cluster":
            return await make_redis_log(url=request.getfixturevalue("redis_cluster_url"))
        if request.param == "nats":
            return make_nats_log()
        log: EventLog
        if request.param == "postgres":
            schema = request.getfixturevalue("postgres_empty_schema")
            log = PostgresEventLog(
                postgres_database(schema, unavailable), poll_interval_seconds=0.005
            )
        else:
            log = SqliteEventLog(sqlite_path, poll_interval_seconds=0.005)
        closing.append(log)
        return log

    yield open_one
    for log in closing:
        await log.close()


@pytest.fixture
async def event_log(open_log: Callable[[], Awaitable[EventLog]]) -> EventLog:
    return await open_log()
