"""The shared cache tier on Redis: one hash per user, ``<prefix>rec:<user_id>``, field = variant.

``invalidate_user`` is a single DEL. The hash's TTL is set with ``EXPIRE ... NX`` in the same
script as the write, so it counts from the user's first write and a later variant never extends
the life of an older one (needs Redis >= 7.0 for ``NX``). A script rather than MULTI: it touches
one key, so it runs as is on a Redis Cluster, where redis-py's asyncio transactions run each
queued command on a thread of their own.

A failing Redis never fails a request: ``get``/``set``/``invalidate_user`` report the error to
``on_error(operation, exc)``, trip the circuit breaker and carry on as a miss / no-op, so a dead
or hanging server costs one timeout per ``retry_after_seconds``, not one per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

from redis.asyncio import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.infra import invalidation_stream
from app.infra.breaker import CircuitBreaker
from app.infra.invalidation_message import encode_invalidation
from app.infra.redis_client import RedisClient, redis_client, register_script
from app.serving.cache.tiered import CacheUnavailable

# Idle pooled connections are PINGed before reuse after this long, so a connection cut by a
# server restart or a NAT is replaced instead of failing a request.
HEALTH_CHECK_INTERVAL_SECONDS = 30

ErrorObserver = Callable[[str, BaseException], None]  # (operation, exception)

# Errors meaning "the server is not answering": they open the breaker. Python's TimeoutError
# (raised by asyncio) is an OSError; redis-py wraps most socket errors in ConnectionError.
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)

T = TypeVar("T")

# KEYS[1]: the user's hash. ARGV: variant, value, TTL seconds.
_SET_SCRIPT = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3], 'NX')
"""

# redis-py annotates each command as ``Awaitable[X] | X`` (one signature for the sync and async
# clients); the asyncio client always returns the awaitable, which these casts state.


def redis_client_from_url(url: str, socket_timeout: float, connect_timeout: float) -> RedisClient:
    """A client for the cache tier (one server or a cluster), built once at start-up; no I/O
    until the first command.

    Every command is bounded by ``socket_timeout`` (connecting by ``connect_timeout``) and is
    never retried: on the request path a miss is cheaper than a second wait.
    """
    return redis_client(
        url,
        socket_timeout=socket_timeout,
        connect_timeout=connect_timeout,
        health_check_interval=HEALTH_CHECK_INTERVAL_SECONDS,
    )


class RedisCache:
    """Shared tier. Takes ownership of ``client``: ``close()`` closes it."""

    tier = "redis"

    def __init__(
        self,
        client: RedisClient,
        *,
        ttl_seconds: int,
        breaker: CircuitBreaker,
        prefix: str = "recserve:",
        on_error: ErrorObserver | None = None,
    ) -> None:
        if ttl_seconds < 1:
            raise ValueError(f"ttl_seconds must be a whole number >= 1, got {ttl_seconds}")
        self._client = client
        self._ttl_seconds = ttl_seconds
        self._breaker = breaker
        self._key_prefix = f"{prefix}rec:"
        self.channel = f"{prefix}invalidate"
        self._on_error = on_error
        self._set_script = register_script(client, _SET_SCRIPT)

    def key(self, user_id: str) -> str:
        """The Redis key holding every variant of ``user_id``."""
        return f"{self._key_prefix}{user_id}"

    async def get(self, user_id: str, variant: str) -> bytes | None:
        """The stored value, or None when absent, expired, or Redis is failing or skipped."""
        if not self._breaker.allow():
            return None
        lookup = cast("Awaitable[bytes | None]", self._client.hget(self.key(user_id), variant))
        return await self._guarded("get", lookup)

    async def set(self, user_id: str, variant: str, value: bytes) -> None:
        """Store ``value`` in the user's hash; dropped (and reported) when Redis is failing."""
        if not self._breaker.allow():
            return
        stored = self._set_script(
            keys=[self.key(user_id)], args=[variant, value, self._ttl_seconds]
        )
        await self._guarded("set", stored)

    async def invalidate_user(self, user_id: str) -> None:
        """Delete the user's hash and publish ``user_id`` on ``channel`` in one round trip, so
        every worker's in-process tier drops it too (``invalidation.SubscribedLocalCache``).
        Skipped while the breaker is open, and then reported as an
        error, because the user's entries stay servable until their TTL."""
        await self.invalidate_users((user_id,))

    async def invalidate_users(self, user_ids: Sequence[str]) -> None:
        """``invalidate_user`` for every one of ``user_ids`` in a single round trip."""
        if not user_ids:
            return
        if not self._breaker.allow():
            self._report(
                "invalidate_user",
                CacheUnavailable("redis circuit open: invalidation skipped, entries live to TTL"),
            )
            return
        keys = [self.key(user_id) for user_id in user_ids]
        # One message for the batch (a JSON array of the ids): every worker's subscriber
        # handles one message per event batch, not one per user (~2 ms of a 100-event batch).
        message = encode_invalidation(user_ids)
        if isinstance(self._client, RedisCluster):
            await self._guarded(
                "invalidate_user", _invalidate_on_cluster(self._client, self.channel, keys, message)
            )
            return
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(*keys)
        pipe.publish(self.channel, message)
        await self._guarded("invalidate_user", pipe.execute())

    async def erase_user(self, user_id: str) -> None:
        """``invalidate_user``; on a cluster also empty the invalidation stream, whose recent
        messages name the user (pub/sub on one server keeps none)."""
        await self.invalidate_user(user_id)
        if isinstance(self._client, RedisCluster) and self._breaker.allow():
            await self._guarded(
                "invalidate_user", invalidation_stream.forget(self._client, self.channel)
            )

    async def ping(self) -> None:
        """Ask Redis directly, whatever the breaker says; the answer updates the breaker, so a
        readiness probe also notices recovery. Raises ``CacheUnavailable`` on failure."""
        try:
            await cast("Awaitable[bool]", self._client.ping())
        except (RedisError, OSError) as exc:
            self._breaker.record_failure()
            raise CacheUnavailable(f"redis: {exc}") from exc
        self._breaker.record_success()

    async def close(self) -> None:
        """Close the client and its connection pool."""
        await self._client.aclose()

    async def _guarded(self, operation: str, call: Awaitable[T]) -> T | None:
        """Await ``call``; on failure report it, update the breaker and return None."""
        try:
            result = await call
        except _UNAVAILABLE as exc:
            self._breaker.record_failure()
            self._report(operation, exc)
            return None
        except RedisError as exc:
            # The server answered, with an error about this command (e.g. WRONGTYPE): it is up.
            self._breaker.record_success()
            self._report(operation, exc)
            return None
        self._breaker.record_success()
        return result

    def _report(self, operation: str, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(operation, exc)


async def _invalidate_on_cluster(
    client: RedisCluster, channel: str, keys: list[str], message: bytes
) -> None:
    """The users' hashes live on several masters and the channel on one more, so no single
    transaction spans them: delete first (redis-py sends one DEL per slot), then announce, so a
    worker dropping its entries on the message cannot read a not-yet-deleted one back."""
    await client.delete(*keys)
    await invalidation_stream.publish(client, channel, message)
