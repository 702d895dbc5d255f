"""Outbox fixtures (SQLite in a temp dir, Redis under a unique key prefix, PostgreSQL in the
test run's schema), a factory of deliveries and a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from app.infra.redis_client import redis_client
from app.privacy.pseudonym import Pseudonymizer
from app.webhooks.outbox import Outbox
from app.webhooks.outbox_postgres import PostgresOutbox, unavailable
from app.webhooks.outbox_redis import RedisOutbox
from app.webhooks.outbox_sqlite import SqliteOutbox
from app.webhooks.types import Delivery
from tests.conftest import POSTGRES_MARKS, TEST_REDIS_URL, delete_redis_keys, postgres_database
from tests.webhooks.receiver import Receiver

REDIS_MARKS = [pytest.mark.redis, pytest.mark.integration]

OpenOutbox = Callable[[], Awaitable[Outbox]]


# The publisher's pseudonyms in tests (production reads the key from settings).
PSEUDONYMS = Pseudonymizer(b"webhook-tests-pseudonym-key")


def make_delivery(
    delivery_id: str,
    endpoint: str = "crm",
    kind: str = "engagement.click",
    user_key: str | None = None,
) -> Delivery:
    body = b'{"id":"' + delivery_id.encode() + b'"}'
    return Delivery(delivery_id, endpoint, kind, body, created_at=time.time(), user_key=user_key)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=REDIS_MARKS),
        pytest.param("redis-cluster", marks=REDIS_MARKS),
        pytest.param("postgres", marks=POSTGRES_MARKS),
    ]
)
async def open_outbox(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenOutbox]:
    """Opens outboxes on the same storage: two of them stand for two worker processes."""
    prefix = f"test:webhooks:{uuid.uuid4().hex}"
    url = (
        request.getfixturevalue("redis_cluster_url")
        if request.param == "redis-cluster"
        else TEST_REDIS_URL
    )
    opened: list[Outbox] = []

    async def open_one() -> Outbox:
        outbox: Outbox
        if request.param.startswith("redis"):
            outbox = RedisOutbox(
                redis_client(url, socket_timeout=2, connect_timeout=2), key_prefix=prefix
            )
        elif request.param == "postgres":
            schema = request.getfixturevalue("postgres_empty_schema")
            outbox = PostgresOutbox(postgres_database(schema, unavailable))
        else:
            outbox = SqliteOutbox(tmp_path / "webhooks" / "outbox.db")
        opened.append(outbox)
        return outbox

    yield open_one
    for outbox in opened:
        await outbox.close()
    if request.param.startswith("redis"):
        await delete_redis_keys(f"{prefix}*", url)


@pytest.fixture
async def outbox(open_outbox: OpenOutbox) -> Outbox:
    return await open_outbox()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.stop()


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)
