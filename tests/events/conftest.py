"""Event factory and the event-log fixtures: SQLite in a temp dir, Redis under a unique key."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from app.events.log import EventLog
from app.events.log_redis import RedisEventLog
from app.events.log_sqlite import SqliteEventLog
from app.events.types import Event, EventType

REDIS_URL = os.environ.get("RECSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REDIS_MARKS = [pytest.mark.redis, pytest.mark.integration]

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
    """Build RedisEventLogs on one stream key unique to this test; delete its keys afterwards."""
    stream_key = f"test:events:{uuid.uuid4().hex}"
    built: list[RedisEventLog] = []

    async def make(
        socket_timeout: float = 2.0,
        max_stream_length: int | None = None,
        dedupe_window_seconds: int = 3600,
    ) -> RedisEventLog:
        log = RedisEventLog(
            Redis.from_url(REDIS_URL, socket_timeout=socket_timeout),
            stream_key=stream_key,
            dedupe_window_seconds=dedupe_window_seconds,
            max_stream_length=max_stream_length,
        )
        built.append(log)
        return log

    yield make
    for log in built:
        await log.close()
    admin = Redis.from_url(REDIS_URL)
    keys = [key async for key in admin.scan_iter(match=f"{stream_key}*")]
    if keys:
        await admin.delete(*keys)
    await admin.aclose()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "events" / "events.db"


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=REDIS_MARKS)])
async def open_log(
    request: pytest.FixtureRequest, sqlite_path: Path, make_redis_log: RedisLogFactory
) -> AsyncIterator[Callable[[], Awaitable[EventLog]]]:
    """Opens logs on the same storage: two of them stand for two processes sharing it."""
    sqlite_logs: list[SqliteEventLog] = []

    async def open_one() -> EventLog:
        if request.param == "redis":
            return await make_redis_log()
        log = SqliteEventLog(sqlite_path, poll_interval_seconds=0.005)
        sqlite_logs.append(log)
        return log

    yield open_one
    for log in sqlite_logs:
        await log.close()


@pytest.fixture
async def event_log(open_log: Callable[[], Awaitable[EventLog]]) -> EventLog:
    return await open_log()
