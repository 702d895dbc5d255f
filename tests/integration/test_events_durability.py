"""An acknowledged ``POST /events`` survives ``kill -9`` of the server right after the answer:
the events are in the durable log and their effect is served after a restart. For the Redis
Stream backend the Redis server is killed and restarted too (append-only, fsync always), and so
is the broker for the NATS JetStream backend."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.events.log import open_event_log
from app.settings import Settings
from loadtests.server import free_port, recserve_argv, running
from tests.integration.conftest import PrivateRedis, copy_home, users_with_history
from tests.integration.nats_server import PrivateNats, private_nats  # noqa: F401 (fixture)
from tests.integration.test_read_your_writes import purchases, recommended_items
from tests.integration.test_redis_outage import redis_home  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


@contextmanager
def _server(settings: Settings) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    """A real one-process server on ``settings``'s home: a client and the server process."""
    port = free_port()
    env = {"RECSERVE_HOME": str(settings.home)}
    if settings.redis_url is not None:
        env["RECSERVE_REDIS_URL"] = settings.redis_url
    if settings.events.backend is not None:
        env["RECSERVE_EVENTS__BACKEND"] = settings.events.backend
        env["RECSERVE_EVENTS__NATS_URL"] = settings.events.nats_url
    with (
        running(recserve_argv(port), port, env=env) as process,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as http,
    ):
        yield http, process


def _logged_ids(settings: Settings) -> set[str]:
    async def read_all() -> set[str]:
        log = open_event_log(settings)
        try:
            return {logged.event.event_id for logged in await log.iter_all()}
        finally:
            await log.close()

    return asyncio.run(read_all())


@pytest.fixture(params=["sqlite", "redis", pytest.param("nats", marks=pytest.mark.nats)])
def durable_home(request: pytest.FixtureRequest, built_home: Settings, tmp_path: Path) -> Settings:
    """A home of its own: SQLite log and features, a Redis Stream log on a private Redis, or
    a JetStream log on a private nats-server (features in SQLite)."""
    if request.param == "sqlite":
        return copy_home(built_home, tmp_path / "home")
    if request.param == "nats":
        server: PrivateNats = request.getfixturevalue("private_nats")
        home = copy_home(built_home, tmp_path / "home")
        events = home.events.model_copy(update={"backend": "nats", "nats_url": server.url})
        return home.model_copy(update={"events": events})
    settings: Settings = request.getfixturevalue("redis_home")
    return settings


def test_acknowledged_events_survive_kill_9(
    durable_home: Settings, request: pytest.FixtureRequest
) -> None:
    user = users_with_history(durable_home)[0]
    with _server(durable_home) as (http, process):
        bought = recommended_items(http, user)[0][:3]
        batch = purchases(user, bought)
        response = http.post("/events", json=batch)
        process.kill()  # SIGKILL as soon as the answer is in: no shutdown, no flush
        process.wait(10)
    assert response.status_code == 200, response.text
    assert len(response.json()["accepted"]) == 3
    if durable_home.redis_url is not None:
        private_redis: PrivateRedis = request.getfixturevalue("private_redis")
        private_redis.kill()
        private_redis.start()
    if durable_home.events.backend == "nats":
        broker: PrivateNats = request.getfixturevalue("private_nats")
        broker.kill()
        broker.start()

    sent_ids = {event["event_id"] for event in batch["events"]}
    assert sent_ids <= _logged_ids(durable_home)
    with _server(durable_home) as (http, _):
        items, _ = recommended_items(http, user)
    assert not set(bought) & set(items)
