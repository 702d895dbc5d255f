"""TieredCache over a real LocalCache and a real RedisCache (the shared test Redis)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from app.infra.breaker import CircuitBreaker
from app.serving.cache.local_tier import LocalCache
from app.serving.cache.redis_tier import RedisCache, redis_client_from_url
from app.serving.cache.tiered import CacheLookup, TieredCache

REDIS_URL = os.environ.get("RECSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class LookupLog:
    """Collects ``on_result(tier, hit)`` reports."""

    def __init__(self) -> None:
        self.results: list[tuple[str, bool]] = []

    def __call__(self, tier: str, hit: bool) -> None:
        self.results.append((tier, hit))


@pytest.fixture
def local() -> LocalCache:
    return LocalCache(max_entries=100, ttl_seconds=60)


@pytest.fixture
async def redis_tier() -> AsyncIterator[RedisCache]:
    prefix = f"test:{uuid.uuid4().hex}:"
    client = redis_client_from_url(REDIS_URL, socket_timeout=1.0, connect_timeout=1.0)
    yield RedisCache(client, ttl_seconds=60, prefix=prefix, breaker=CircuitBreaker(60))
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def lookups() -> LookupLog:
    return LookupLog()


@pytest.fixture
def tiered(local: LocalCache, redis_tier: RedisCache, lookups: LookupLog) -> TieredCache:
    return TieredCache([local, redis_tier], on_result=lookups)


@pytest.mark.redis
@pytest.mark.integration
async def test_miss_everywhere_reports_a_miss_per_tier(
    tiered: TieredCache, lookups: LookupLog
) -> None:
    assert await tiered.get("u", "v") == CacheLookup(None, None)
    assert lookups.results == [("local", False), ("redis", False)]


@pytest.mark.redis
@pytest.mark.integration
async def test_redis_hit_fills_the_local_tier_and_the_next_get_stays_local(
    tiered: TieredCache, local: LocalCache, redis_tier: RedisCache, lookups: LookupLog
) -> None:
    await redis_tier.set("u", "v", b"shared")  # e.g. written by another worker

    value, tier = await tiered.get("u", "v")
    assert (value, tier) == (b"shared", "redis")
    assert lookups.results == [("local", False), ("redis", True)]
    assert await local.get("u", "v") == b"shared"

    lookups.results.clear()
    assert await tiered.get("u", "v") == CacheLookup(b"shared", "local")
    assert lookups.results == [("local", True)]  # redis was not consulted


@pytest.mark.redis
@pytest.mark.integration
async def test_empty_value_is_a_hit(tiered: TieredCache, lookups: LookupLog) -> None:
    await tiered.set("u", "v", b"")
    assert await tiered.get("u", "v") == CacheLookup(b"", "local")
    assert lookups.results == [("local", True)]


@pytest.mark.redis
@pytest.mark.integration
async def test_set_and_invalidate_reach_every_tier(
    tiered: TieredCache, local: LocalCache, redis_tier: RedisCache
) -> None:
    await tiered.set("u", "v", b"x")
    await tiered.set("other", "v", b"y")
    assert await local.get("u", "v") == b"x"
    assert await redis_tier.get("u", "v") == b"x"

    await tiered.invalidate_user("u")
    assert await local.get("u", "v") is None
    assert await redis_tier.get("u", "v") is None
    assert await tiered.get("other", "v") == CacheLookup(b"y", "local")


@pytest.mark.integration
async def test_dead_redis_tier_leaves_the_local_tier_working(local: LocalCache) -> None:
    dead = RedisCache(
        redis_client_from_url("redis://127.0.0.1:1/0", socket_timeout=0.5, connect_timeout=0.5),
        ttl_seconds=60,
        breaker=CircuitBreaker(60),
    )
    lookups = LookupLog()
    tiered = TieredCache([local, dead], on_result=lookups)
    await tiered.set("u", "v", b"x")  # the Redis write fails quietly
    assert await tiered.get("u", "v") == CacheLookup(b"x", "local")
    assert await tiered.get("u", "missing") == CacheLookup(None, None)
    assert lookups.results == [("local", True), ("local", False), ("redis", False)]
    await tiered.invalidate_user("u")
    assert await local.get("u", "v") is None
    await tiered.close()


def test_tiered_cache_needs_a_tier() -> None:
    with pytest.raises(ValueError, match="at least one tier"):
        TieredCache([])
