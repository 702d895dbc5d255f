"""Cross-worker invalidation of the in-process cache tier over Redis pub/sub.

Every uvicorn worker holds its own ``LocalCache``. ``RedisCache.invalidate_users`` publishes the
user ids (one JSON array per call) on ``RedisCache.channel`` in the same round trip as its
delete, before ``POST /events`` answers; each worker's ``SubscribedLocalCache`` listens on that
channel and drops the users from its local tier (well under a millisecond later on loopback).

On a Redis Cluster the channel is a capped stream instead of pub/sub
(``app/infra/invalidation_stream.py``): same messages, same guarantees.

A worker that is not subscribed could miss an invalidation, so its local tier is trusted only
while the subscription is live: until the first subscription, and while Redis is unreachable,
it stores and serves nothing, and each (re)subscription starts it empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from redis.asyncio import RedisCluster
from redis.exceptions import RedisError

from app.infra import invalidation_stream
from app.infra.invalidation_message import decode_invalidation
from app.infra.redis_client import RedisClient, is_cluster_url, redis_client
from app.serving.cache.local_tier import LocalCache
from app.serving.cache.redis_tier import ErrorObserver
from app.serving.cache.tiered import CacheUnavailable

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.05
MAX_RETRY_SECONDS = 1.0


def subscriber_client_from_url(url: str, connect_timeout: float) -> RedisClient:
    """A client for the subscription alone. On one server its connection blocks on reads
    between messages, so it has no socket timeout (keepalive notices a silent peer instead); a
    cluster's stream reads return after ``READ_BLOCK_MS``, so a read outlasting that by a second
    means the master is gone."""
    timeout = invalidation_stream.READ_BLOCK_MS / 1000 + 1.0 if is_cluster_url(url) else None
    return redis_client(
        url, socket_timeout=timeout, connect_timeout=connect_timeout, socket_keepalive=True
    )


class SubscribedLocalCache:
    """The local tier of a worker among several: ``local`` kept coherent with the other workers'
    writes by a background subscriber to ``channel``. Takes ownership of ``client`` and of
    ``local``; ``start()`` (inside the event loop) begins listening, ``close()`` stops it."""

    tier = "local"

    def __init__(
        self,
        local: LocalCache,
        client: RedisClient,
        channel: str,
        *,
        on_error: ErrorObserver | None = None,
    ) -> None:
        self._local = local
        self._client = client
        self._channel = channel
        self._on_error = on_error
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribed(self) -> bool:
        """Whether invalidations currently reach this worker (and the tier is in use)."""
        return self._subscribed.is_set()

    def start(self) -> None:
        """Start the subscriber task; call once, from the running event loop."""
        if self._task is not None:
            raise RuntimeError("subscriber already started")
        self._task = asyncio.get_running_loop().create_task(self._listen_forever())

    async def wait_subscribed(self, timeout: float) -> None:
        """Return once subscribed; raise ``TimeoutError`` after ``timeout`` seconds."""
        await asyncio.wait_for(self._subscribed.wait(), timeout)

    async def get(self, user_id: str, variant: str) -> bytes | None:
        """The local value while subscribed, else None (it might have missed an invalidation)."""
        if not self._subscribed.is_set():
            return None
        return await self._local.get(user_id, variant)

    async def set(self, user_id: str, variant: str, value: bytes) -> None:
        """Store locally while subscribed; dropped otherwise."""
        if self._subscribed.is_set():
            await self._local.set(user_id, variant, value)

    async def invalidate_user(self, user_id: str) -> None:
        """Drop ``user_id`` here; the Redis tier's invalidation tells the other workers."""
        await self._local.invalidate_user(user_id)

    async def erase_user(self, user_id: str) -> None:
        """Drop ``user_id`` here; the Redis tier's erasure tells the other workers."""
        await self._local.invalidate_user(user_id)

    async def invalidate_users(self, user_ids: Sequence[str]) -> None:
        """Drop ``user_ids`` here; the Redis tier's invalidation tells the other workers."""
        await self._local.invalidate_users(user_ids)

    async def ping(self) -> None:
        """Raise ``CacheUnavailable`` while not subscribed: the tier is then bypassed."""
        if not self._subscribed.is_set():
            raise CacheUnavailable("local tier bypassed: not subscribed to invalidations")

    async def close(self) -> None:
        """Stop the subscriber, close its client and drop everything held."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()
        await self._local.close()

    async def _listen_forever(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                if self._on_error is not None:
                    self._on_error("subscribe", exc)
                log.warning("invalidation subscription lost, retrying in %.2fs: %s", delay, exc)
            # A subscription that had worked resets the backoff; repeated failures double it.
            delay = FIRST_RETRY_SECONDS if self._subscribed.is_set() else delay
            self._subscribed.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def _listen(self) -> None:
        if isinstance(self._client, RedisCluster):
            async for data in invalidation_stream.messages(
                self._client, self._channel, self._ready
            ):
                if data == invalidation_stream.CLEAR_ALL:
                    self._local.clear()
                else:
                    await self._local.invalidate_users(decode_invalidation(data))
            return
        async with self._client.pubsub() as pubsub:
            await pubsub.subscribe(self._channel)
            async for message in pubsub.listen():
                if message["type"] == "message":
                    await self._local.invalidate_users(decode_invalidation(message["data"]))
                elif message["type"] == "subscribe":
                    self._ready()

    def _ready(self) -> None:
        # Entries stored before this subscription may have missed invalidations.
        self._local.clear()
        self._subscribed.set()
