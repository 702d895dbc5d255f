"""One contract, every cache tier: the same tests run on LocalCache and on RedisCache (a real
Redis server, and a real Redis Cluster).

Then what only one backend has: Redis failing (closed port, a server that never answers) and
the local tier's bounds.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.infra.breaker import BreakerState, CircuitBreaker
from app.infra.redis_client import is_cluster_url
from app.serving.cache.local_tier import MAX_VARIANTS_PER_USER, LocalCache
from app.serving.cache.redis_tier import RedisCache, redis_client_from_url
from app.serving.cache.tiered import CacheUnavailable, RecommendationCache
from tests.conftest import delete_redis_keys

REDIS_URL = os.environ.get("RECSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"
TTL_SECONDS = 1  # Redis TTLs are whole seconds; the expiry test waits just over one
REDIS_MARKS = [pytest.mark.redis, pytest.mark.integration]

RedisCacheFactory = Callable[..., Awaitable[RedisCache]]


@pytest.fixture
async def make_redis_cache() -> AsyncIterator[RedisCacheFactory]:
    """Build RedisCaches under a prefix unique to this test; delete its keys afterwards."""
    prefix = f"test:{uuid.uuid4().hex}:"
    built: list[RedisCache] = []
    urls: set[str] = set()

    async def make(
        url: str = REDIS_URL,
        timeout: float = 1.0,
        on_error: Callable[[str, BaseException], None] | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> RedisCache:
        cache = RedisCache(
            redis_client_from_url(url, socket_timeout=timeout, connect_timeout=timeout),
            ttl_seconds=TTL_SECONDS,
            prefix=prefix,
            breaker=breaker or CircuitBreaker(retry_after_seconds=60),
            on_error=on_error,
        )
        built.append(cache)
        if url == REDIS_URL or is_cluster_url(url):  # not the stand-ins for failing servers
            urls.add(url)
        return cache

    yield make
    for cache in built:
        await cache.close()
    for url in urls:
        await delete_redis_keys(f"{prefix}*", url)


@pytest.fixture(
    params=[
        "local",
        pytest.param("redis", marks=REDIS_MARKS),
        pytest.param("redis-cluster", marks=REDIS_MARKS),
    ]
)
async def cache(
    request: pytest.FixtureRequest, make_redis_cache: RedisCacheFactory
) -> RecommendationCache:
    if request.param == "local":
        return LocalCache(max_entries=100, ttl_seconds=TTL_SECONDS)
    if request.param == "redis-cluster":
        return await make_redis_cache(request.getfixturevalue("redis_cluster_url"))
    return await make_redis_cache()


async def test_get_returns_what_set_stored(cache: RecommendationCache) -> None:
    assert await cache.get("u1", "v1") is None
    await cache.set("u1", "v1", b'{"items":[["i1",0.5]]}')
    assert await cache.get("u1", "v1") == b'{"items":[["i1",0.5]]}'


async def test_variants_of_a_user_are_independent(cache: RecommendationCache) -> None:
    await cache.set("u1", "m1|10", b"ten")
    await cache.set("u1", "m1|20", b"twenty")
    await cache.set("u1", "m1|10", b"ten again")
    assert await cache.get("u1", "m1|10") == b"ten again"
    assert await cache.get("u1", "m1|20") == b"twenty"
    assert await cache.get("u1", "m2|10") is None


async def test_invalidate_users_drops_every_listed_user_and_nothing_else(
    cache: RecommendationCache,
) -> None:
    for user in ("u1", "u2", "u3"):
        await cache.set(user, "a", user.encode())
    await cache.set("u1", "b", b"1b")
    await cache.invalidate_users(["u1", "u3"])
    await cache.invalidate_users([])
    assert [await cache.get("u1", "a"), await cache.get("u1", "b")] == [None, None]
    assert await cache.get("u3", "a") is None
    assert await cache.get("u2", "a") == b"u2"


async def test_invalidate_user_drops_all_its_variants_and_nothing_else(
    cache: RecommendationCache,
) -> None:
    await cache.set("u1", "a", b"1a")
    await cache.set("u1", "b", b"1b")
    await cache.set("u2", "a", b"2a")
    await cache.invalidate_user("u1")
    assert await cache.get("u1", "a") is None
    assert await cache.get("u1", "b") is None
    assert await cache.get("u2", "a") == b"2a"
    await cache.set("u1", "a", b"new")  # the user can be cached again
    assert await cache.get("u1", "a") == b"new"


async def test_entries_expire_ttl_after_the_users_first_write(cache: RecommendationCache) -> None:
    await cache.set("u1", "first", b"1")
    await asyncio.sleep(TTL_SECONDS * 0.6)
    await cache.set("u1", "later", b"2")  # must not extend the life of "first"
    assert await cache.get("u1", "first") == b"1"
    await asyncio.sleep(TTL_SECONDS * 0.6)
    assert await cache.get("u1", "first") is None
    assert await cache.get("u1", "later") is None


@pytest.mark.parametrize(
    "value", [b"", bytes(range(256)), b"\x00\xff" * 40_000], ids=["empty", "all-bytes", "80kB"]
)
async def test_binary_values_come_back_byte_for_byte(
    cache: RecommendationCache, value: bytes
) -> None:
    await cache.set("üser:1", "v", value)
    assert await cache.get("üser:1", "v") == value


async def test_local_tier_ping_always_answers_and_close_empties_it() -> None:
    cache = LocalCache(max_entries=10, ttl_seconds=5)
    await cache.ping()
    await cache.set("u", "v", b"x")
    await cache.close()
    assert await cache.get("u", "v") is None


async def test_local_tier_evicts_least_recently_used_user_beyond_max_entries() -> None:
    cache = LocalCache(max_entries=2, ttl_seconds=60)
    await cache.set("old", "v", b"o")
    await cache.set("recent", "v", b"r")
    assert await cache.get("old", "v") == b"o"  # "old" is now the most recently used
    await cache.set("new", "v", b"n")
    assert await cache.get("recent", "v") is None
    assert await cache.get("old", "v") == b"o"
    assert await cache.get("new", "v") == b"n"


async def test_local_tier_keeps_a_bounded_number_of_variants_per_user() -> None:
    cache = LocalCache(max_entries=10, ttl_seconds=60)
    for n in range(MAX_VARIANTS_PER_USER + 1):
        await cache.set("u", f"v{n}", str(n).encode())
    assert await cache.get("u", "v0") is None  # the oldest variant made room
    assert await cache.get("u", f"v{MAX_VARIANTS_PER_USER}") == str(MAX_VARIANTS_PER_USER).encode()


async def test_local_tier_with_zero_entries_stores_nothing() -> None:
    cache = LocalCache(max_entries=0, ttl_seconds=60)
    await cache.set("u", "v", b"x")
    assert await cache.get("u", "v") is None


class ErrorLog:
    """Collects ``on_error`` reports: one per attempt that reached the failing backend."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, BaseException]] = []

    def __call__(self, operation: str, exc: BaseException) -> None:
        self.reports.append((operation, exc))


@pytest.mark.redis
@pytest.mark.integration
async def test_dead_redis_is_a_fast_miss_and_the_breaker_stops_further_attempts(
    make_redis_cache: RedisCacheFactory,
) -> None:
    errors = ErrorLog()
    breaker = CircuitBreaker(retry_after_seconds=60)
    cache = await make_redis_cache(CLOSED_PORT_URL, timeout=0.5, on_error=errors, breaker=breaker)

    started = time.perf_counter()
    assert await cache.get("u", "v") is None
    assert time.perf_counter() - started < 0.5  # refused at once, not a timeout
    assert [(op, type(exc)) for op, exc in errors.reports] == [("get", RedisConnectionError)]
    assert breaker.state is BreakerState.OPEN

    assert await cache.get("u", "v") is None
    await cache.set("u", "v", b"x")
    assert len(errors.reports) == 1  # neither call tried the server
    await cache.invalidate_user("u")  # a lost invalidation is reported, not silent
    assert errors.reports[-1][0] == "invalidate_user"
    assert isinstance(errors.reports[-1][1], CacheUnavailable)

    with pytest.raises(CacheUnavailable, match="redis"):
        await cache.ping()


@pytest.mark.redis
@pytest.mark.integration
async def test_successful_ping_closes_an_open_breaker(make_redis_cache: RedisCacheFactory) -> None:
    breaker = CircuitBreaker(retry_after_seconds=60)
    cache = await make_redis_cache(breaker=breaker)
    await cache.set("u", "v", b"x")
    breaker.record_failure()
    assert await cache.get("u", "v") is None  # skipped while open, though the value is there
    await cache.ping()
    assert breaker.state is BreakerState.CLOSED
    assert await cache.get("u", "v") == b"x"


@pytest.mark.redis
@pytest.mark.integration
async def test_hanging_redis_costs_one_socket_timeout_without_retry(
    make_redis_cache: RedisCacheFactory,
) -> None:
    connections = 0

    async def accept_and_never_answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal connections
        connections += 1
        await reader.read()  # returns when the client hangs up
        writer.close()

    server = await asyncio.start_server(accept_and_never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    errors = ErrorLog()
    timeout = 0.1
    cache = await make_redis_cache(f"redis://127.0.0.1:{port}/0", timeout=timeout, on_error=errors)
    async with server:
        started = time.perf_counter()
        assert await cache.get("u", "v") is None
        elapsed = time.perf_counter() - started
        await cache.set("u", "v", b"x")  # breaker open: returns at once
        assert time.perf_counter() - started < elapsed + 0.01
    assert timeout * 0.9 <= elapsed < timeout * 3
    assert [(op, type(exc)) for op, exc in errors.reports] == [("get", RedisTimeoutError)]
    assert connections == 1
