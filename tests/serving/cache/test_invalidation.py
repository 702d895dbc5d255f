"""Cross-worker invalidation on real Redis: two "workers" (each a local tier subscribed to the
channel) and the shared tier that publishes, under a channel and key prefix unique to the test;
on one server (pub/sub) and on a Redis Cluster (a capped stream)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis, RedisCluster

from app.bootstrap import build_cache
from app.infra import invalidation_stream
from app.infra.breaker import CircuitBreaker
from app.infra.redis_client import node_clients, redis_client
from app.serving.cache.invalidation import SubscribedLocalCache, subscriber_client_from_url
from app.serving.cache.local_tier import LocalCache
from app.serving.cache.redis_tier import RedisCache, redis_client_from_url
from app.serving.cache.tiered import CacheUnavailable
from app.settings import ApiSettings, Settings

pytestmark = [pytest.mark.redis, pytest.mark.integration]

REDIS_URL = os.environ.get("RECSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SUBSCRIBE_TIMEOUT_SECONDS = 5.0
# Loopback delivery takes well under a millisecond; this bound only fails a lost message.
DELIVERY_BOUND_SECONDS = 0.1


@dataclass
class Cluster:
    shared: RedisCache
    workers: list[SubscribedLocalCache]
    subscriber_name: str
    url: str


@pytest.fixture(params=["redis", "redis-cluster"])
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    """The shared tier and two subscribed local tiers, as two workers would build them."""
    url = REDIS_URL if request.param == "redis" else request.getfixturevalue("redis_cluster_url")
    prefix = f"test:{uuid.uuid4().hex}:"
    shared = RedisCache(
        redis_client_from_url(url, socket_timeout=1.0, connect_timeout=1.0),
        ttl_seconds=60,
        prefix=prefix,
        breaker=CircuitBreaker(retry_after_seconds=60),
    )
    name = f"sub-{uuid.uuid4().hex}"
    workers = []
    for _ in range(2):
        client = subscriber_client_from_url(url, connect_timeout=1.0)
        # Named so a test can cut exactly these connections on the shared server.
        if isinstance(client, RedisCluster):
            client.connection_kwargs["client_name"] = name
        else:
            client.connection_pool.connection_kwargs["client_name"] = name
        workers.append(SubscribedLocalCache(LocalCache(100, 60), client, shared.channel))
    yield Cluster(shared, workers, name, url)
    for worker in workers:
        await worker.close()
    await shared.close()


async def _start(workers: list[SubscribedLocalCache]) -> None:
    for worker in workers:
        worker.start()
    for worker in workers:
        await worker.wait_subscribed(SUBSCRIBE_TIMEOUT_SECONDS)


async def _dropped_after(worker: SubscribedLocalCache, user_id: str) -> float:
    """Seconds until ``worker`` no longer holds ``user_id``; fails past the delivery bound."""
    started = time.perf_counter()
    while await worker.get(user_id, "k5") is not None:
        assert time.perf_counter() - started < DELIVERY_BOUND_SECONDS, "invalidation lost"
        await asyncio.sleep(0)
    return time.perf_counter() - started


async def test_invalidation_reaches_every_worker_local_tier(cluster: Cluster) -> None:
    await _start(cluster.workers)
    for worker in cluster.workers:
        await worker.set("u1", "k5", b"stale")
        await worker.set("u2", "k5", b"other user")
    await cluster.workers[0].invalidate_user("u1")  # what the publishing worker does itself
    await cluster.shared.invalidate_user("u1")
    windows = [await _dropped_after(worker, "u1") for worker in cluster.workers]
    assert max(windows) < DELIVERY_BOUND_SECONDS
    assert [await worker.get("u2", "k5") for worker in cluster.workers] == [b"other user"] * 2


async def test_one_message_invalidates_a_batch_and_garbage_is_skipped(cluster: Cluster) -> None:
    await _start(cluster.workers)
    worker = cluster.workers[0]
    for user_id in ("u1", "u2", "u3"):
        await worker.set(user_id, "k5", b"stale")
    async with redis_client(cluster.url, socket_timeout=1.0, connect_timeout=1.0) as raw:
        # Not ours (another version, a stray client): logged and skipped, the listener lives on.
        for garbage in (b"u3", b'{"not": "a list"}'):
            if isinstance(raw, RedisCluster):
                await invalidation_stream.publish(raw, cluster.shared.channel, garbage)
            else:
                await raw.publish(cluster.shared.channel, garbage)
    await cluster.shared.invalidate_users(["u1", "u2"])
    await _dropped_after(worker, "u1")
    await _dropped_after(worker, "u2")
    assert await worker.get("u3", "k5") == b"stale"
    assert worker.subscribed


async def test_erasure_reaches_every_worker_and_leaves_no_id_in_the_channel(
    cluster: Cluster,
) -> None:
    await _start(cluster.workers)
    for worker in cluster.workers:
        await worker.set("u1", "k5", b"erased user's list")
    await cluster.shared.invalidate_users(["u1", "u2"])  # a message naming u1 in the channel
    await cluster.shared.erase_user("u1")
    for worker in cluster.workers:
        await _dropped_after(worker, "u1")
    async with redis_client(cluster.url, socket_timeout=1.0, connect_timeout=1.0) as raw:
        if isinstance(raw, RedisCluster):
            key = invalidation_stream.stream_key(cluster.shared.channel)
            left = [fields[b"m"] for _, fields in await raw.xrange(key)]
            assert left == [invalidation_stream.CLEAR_ALL]  # nothing names the user any more


async def test_the_clear_all_message_is_newer_than_any_message_a_reader_saw(
    redis_cluster_url: str,
) -> None:
    """Readers wait for IDs past the last one they saw, so the erasure's clear-all message must
    get a newer ID even when the last message's lies ahead of the clock (written in the same
    millisecond, or by a master whose clock ran ahead)."""
    channel = f"test-{uuid.uuid4().hex}"
    key = invalidation_stream.stream_key(channel)
    ahead = f"{int(time.time() * 1000) + 60_000}-0"
    async with redis_client(redis_cluster_url, socket_timeout=1.0, connect_timeout=1.0) as raw:
        assert isinstance(raw, RedisCluster)
        await raw.xadd(key, {invalidation_stream.MESSAGE_FIELD: b"u1"}, id=ahead)
        await invalidation_stream.forget(raw, channel)
        entries = await raw.xrange(key)
        await raw.delete(key)
    assert [fields[invalidation_stream.MESSAGE_FIELD] for _, fields in entries] == [
        invalidation_stream.CLEAR_ALL
    ]
    assert _stream_id(entries[0][0]) > _stream_id(ahead)


def _stream_id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    milliseconds, sequence = text.split("-")
    return int(milliseconds), int(sequence)


async def test_local_tier_unused_until_subscribed(cluster: Cluster) -> None:
    worker = cluster.workers[0]
    await worker.set("u1", "k5", b"value")
    assert await worker.get("u1", "k5") is None
    with pytest.raises(CacheUnavailable):
        await worker.ping()
    await _start([worker])
    await worker.ping()
    await worker.set("u1", "k5", b"value")
    assert await worker.get("u1", "k5") == b"value"


async def test_lost_subscription_bypasses_then_resubscribes_empty(cluster: Cluster) -> None:
    worker = cluster.workers[0]
    await _start([worker])
    await worker.set("u1", "k5", b"stored before the cut")
    # Invalidations published while disconnected are lost, so nothing from before may stay.
    assert await _kill_named(cluster.url, cluster.subscriber_name), "subscriber not named"
    started = time.perf_counter()
    while worker.subscribed:
        assert time.perf_counter() - started < SUBSCRIBE_TIMEOUT_SECONDS, "cut not noticed"
        await asyncio.sleep(0.001)
    assert await worker.get("u1", "k5") is None
    await worker.wait_subscribed(SUBSCRIBE_TIMEOUT_SECONDS)
    assert await worker.get("u1", "k5") is None
    await worker.set("u1", "k5", b"fresh")
    assert await worker.get("u1", "k5") == b"fresh"


async def _kill_named(url: str, name: str) -> int:
    """Cut every connection called ``name`` on the server (every node of a cluster)."""
    client = redis_client(url, socket_timeout=1.0, connect_timeout=1.0)
    servers: list[Redis]
    if isinstance(client, RedisCluster):
        await client.initialize()
        servers = node_clients(client, socket_timeout=1.0)
        await client.aclose()
    else:
        servers = [client]
    killed = 0
    for server in servers:
        async with server:
            for found in await server.client_list():
                if found["name"] == name:
                    await server.client_kill_filter(_id=found["id"])
                    killed += 1
    return killed


@pytest.mark.parametrize(("workers", "tiers"), [(1, ["local"]), (2, None)])
def test_without_redis_several_workers_keep_no_cache(
    tmp_path: Path, workers: int, tiers: list[str] | None
) -> None:
    # No channel would reach the other workers' local tiers, so none may hold a stale list.
    cache = build_cache(Settings(home=tmp_path, api=ApiSettings(workers=workers)))
    assert (None if cache is None else [tier.tier for tier in cache.tiers]) == tiers
