"""Failover of a Redis Cluster master under load: ``kill -9`` of the master holding the event
stream while cache reads/writes and event appends run; its replica is promoted, the clients
follow, and no acknowledged event is lost. The figures are printed:

    python -m pytest tests/integration/test_redis_cluster_failover.py -q -s -p no:cacheprovider

The killed node is restarted afterwards and rejoins as a replica, so the session's cluster is
whole again for later tests.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import pytest
from redis.asyncio import RedisCluster

from app.events.log_redis import RedisEventLog
from app.events.types import EventLogUnavailable
from app.infra.breaker import CircuitBreaker
from app.infra.redis_client import redis_client
from app.serving.cache.redis_tier import RedisCache, redis_client_from_url
from tests.conftest import delete_redis_keys
from tests.events.conftest import make_event
from tests.fixtures.redis_cluster import RedisClusterProcesses

pytestmark = [pytest.mark.integration, pytest.mark.redis]

LOAD_BEFORE_KILL_SECONDS = 1.0
LOAD_AFTER_RECOVERY_SECONDS = 1.0
PAUSE_SECONDS = 0.002  # between two operations of one load task: a small, steady load
CACHE_TIMEOUT_SECONDS = 0.25
LOG_TIMEOUT_SECONDS = 0.5


class Load:
    """Cache and event-log operations run until ``stop``; what they saw."""

    def __init__(self, cache: RedisCache, log: RedisEventLog, errors: Counter[str]) -> None:
        self.cache = cache
        self.log = log
        self.stop = asyncio.Event()
        self.acknowledged: list[str] = []
        self.errors = errors
        self.operations: Counter[str] = Counter()
        self.append_failed_at: list[float] = []

    async def append_events(self) -> None:
        number = 0
        while not self.stop.is_set():
            event = make_event(f"failover-{number}")
            try:
                result = await self.log.append([event])
            except EventLogUnavailable:
                # Not acknowledged: the same id is sent again, as a client retrying would.
                self.errors["event append"] += 1
                self.append_failed_at.append(time.monotonic())
            else:
                self.acknowledged += [*result.appended, *result.duplicates]
                number += 1
            self.operations["event append"] += 1
            await asyncio.sleep(PAUSE_SECONDS)

    async def use_cache(self) -> None:
        number = 0
        while not self.stop.is_set():
            user = f"user-{number % 100}"
            await self.cache.set(user, "v", b"list")
            await self.cache.get(user, "v")
            self.operations["cache set"] += 1
            self.operations["cache get"] += 1
            number += 1
            await asyncio.sleep(PAUSE_SECONDS)


async def _stream_master_port(url: str, stream_key: str) -> int:
    client = redis_client(url, socket_timeout=1.0, connect_timeout=1.0)
    async with client:
        if not isinstance(client, RedisCluster):
            raise TypeError("not a cluster URL")
        await client.initialize()
        return int(client.get_node_from_key(stream_key).port)


async def test_master_failover_loses_no_acknowledged_event(
    redis_cluster: RedisClusterProcesses, capsys: pytest.CaptureFixture[str]
) -> None:
    url = redis_cluster.url
    prefix = f"test:failover:{uuid.uuid4().hex}"
    log = RedisEventLog(
        redis_client(url, socket_timeout=LOG_TIMEOUT_SECONDS, connect_timeout=LOG_TIMEOUT_SECONDS),
        stream_key=f"{prefix}:events",
        dedupe_window_seconds=3600,
    )
    errors: Counter[str] = Counter()
    cache = RedisCache(
        redis_client_from_url(url, CACHE_TIMEOUT_SECONDS, CACHE_TIMEOUT_SECONDS),
        ttl_seconds=60,
        prefix=f"{prefix}:",
        breaker=CircuitBreaker(retry_after_seconds=0.2),
        on_error=lambda operation, _exc: errors.update([f"cache {operation}"]),
    )
    load = Load(cache, log, errors)
    victim_port = await _stream_master_port(url, log.stream_key)
    tasks = [asyncio.create_task(load.append_events()), asyncio.create_task(load.use_cache())]
    try:
        await asyncio.sleep(LOAD_BEFORE_KILL_SECONDS)
        redis_cluster.kill_master(victim_port)
        killed_at = time.monotonic()
        await asyncio.to_thread(redis_cluster.wait_ok)
        ok_after = time.monotonic() - killed_at
        await asyncio.sleep(LOAD_AFTER_RECOVERY_SECONDS)
        load.stop.set()
        await asyncio.gather(*tasks)
        stored = {logged.event.event_id for logged in await log.iter_all(limit=1_000_000)}
        appends_back = len(load.acknowledged)
        await load.cache.set("after", "v", b"fresh")
        cache_back = await load.cache.get("after", "v")
    finally:
        load.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await load.cache.close()
        await log.close()
        await asyncio.to_thread(redis_cluster.revive)
        await delete_redis_keys(f"{prefix}*", url)

    lost = sorted(set(load.acknowledged) - stored)
    failing_for = max(load.append_failed_at) - killed_at if load.append_failed_at else 0.0
    with capsys.disabled():
        print(
            f"\nredis cluster failover (kill -9 of the event stream's master :{victim_port}): "
            f"cluster_state:ok again after {ok_after:.2f} s; appends failing for "
            f"{failing_for:.2f} s; operations {dict(load.operations)}; errors "
            f"{dict(load.errors)}; acknowledged events {len(load.acknowledged)}, lost {len(lost)}"
        )
    assert lost == []
    assert appends_back > 0
    assert load.operations["event append"] > load.errors["event append"]
    assert cache_back == b"fresh"
