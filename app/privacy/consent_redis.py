"""The Redis consent store, shared by every worker and host.

Keys: ``PREFIX:<pseudonym>`` (the current record, ``ConsentRecord.to_bytes``) and
``PREFIX:<pseudonym>:history`` (a list of changes, oldest first); on a Redis Cluster
``PREFIX:{<pseudonym>}`` and ``PREFIX:{<pseudonym>}:history``, so a user's two keys share a
slot and one script writes both. Every write publishes the pseudonym on
``PREFIX:invalidate`` (in the same script on one server, right after it on a cluster), so
each worker's consent cache (``invalidation.SubscribedLocalCache``) drops it before the ``PUT``
answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import cast

import orjson
from redis.asyncio import RedisCluster
from redis.exceptions import RedisError

from app.infra import invalidation_stream
from app.infra.breaker import CircuitBreaker
from app.infra.invalidation_message import encode_invalidation
from app.infra.redis_client import RedisClient, register_script, slot_tag
from app.privacy.consent import ConsentChange, ConsentRecord, ConsentUnavailable

MAX_WRITE_ATTEMPTS = 5  # optimistic retries when two writers change one user at once

# KEYS: current record, history. ARGV: the record read ('' for none), the merged record, the
# change, the pub/sub channel ('' for none), the invalidation message. 1 when written, 0 when
# another writer changed the record since it was read.
_WRITE_IF_UNCHANGED = """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return 1
"""


class RedisConsentStore:
    """``ConsentStore`` on Redis. Takes ownership of ``client``."""

    def __init__(
        self, client: RedisClient, *, prefix: str, breaker: CircuitBreaker | None = None
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._breaker = breaker  # guards ``get``, the request path: a failing Redis costs one
        self.channel = f"{prefix}:invalidate"  # timeout per retry delay, not one per request
        self._write_if_unchanged = register_script(client, _WRITE_IF_UNCHANGED)

    def key(self, pseudonym: str) -> str:
        return f"{self._prefix}:{slot_tag(self._client, pseudonym)}"

    async def get(self, key: str) -> ConsentRecord | None:
        return (await self.get_many([key]))[key]

    async def get_many(self, keys: Sequence[str]) -> dict[str, ConsentRecord | None]:
        """One MGET for every key, behind the breaker."""
        if not keys:
            return {}
        if self._breaker is not None and not self._breaker.allow():
            raise ConsentUnavailable("redis consent store: skipped after a recent failure")
        try:
            async with self._unavailable("get"):
                found = await self._mget([self.key(key) for key in keys])
        except ConsentUnavailable:
            if self._breaker is not None:
                self._breaker.record_failure()
            raise
        if self._breaker is not None:
            self._breaker.record_success()
        return {
            key: None if data is None else ConsentRecord.from_bytes(data)
            for key, data in zip(keys, found, strict=True)
        }

    async def record(self, key: str, changes: Mapping[str, bool], at: float) -> ConsentRecord:
        """Read, merge, then write only if the record is still what was read (a compare-and-set
        script), so concurrent changes to one user never lose a purpose."""
        current_key = self.key(key)
        # One server publishes inside the script; a cluster's channel is a stream elsewhere.
        channel = "" if isinstance(self._client, RedisCluster) else self.channel
        async with self._unavailable("record"):
            for _ in range(MAX_WRITE_ATTEMPTS):
                data = await cast("Awaitable[bytes | None]", self._client.get(current_key))
                previous = ConsentRecord.from_bytes(data).choices if data else {}
                merged = ConsentRecord({**previous, **changes}, at)
                args: list[bytes | str] = [
                    data or b"",
                    merged.to_bytes(),
                    _change_bytes(changes, at),
                    channel,
                    encode_invalidation([key]),
                ]
                keys = [current_key, f"{current_key}:history"]
                if await self._write_if_unchanged(keys=keys, args=args):
                    await self._publish_after(key)
                    return merged
            raise ConsentUnavailable(f"consent of one user changed {MAX_WRITE_ATTEMPTS} times")

    async def history(self, key: str) -> list[ConsentChange]:
        async with self._unavailable("history"):
            rows = await cast(
                "Awaitable[list[bytes]]", self._client.lrange(f"{self.key(key)}:history", 0, -1)
            )
        return [_change_from_bytes(row) for row in rows]

    async def erase(self, key: str) -> bool:
        current_key = self.key(key)
        async with self._unavailable("erase"):
            if isinstance(self._client, RedisCluster):
                # Both keys share the user's slot: one DEL. Then the channel's stream, whose
                # recent messages name the pseudonym, is emptied with a drop-everything message.
                deleted = await self._client.delete(current_key, f"{current_key}:history")
                await invalidation_stream.forget(self._client, self.channel)
            else:
                pipe = self._client.pipeline(transaction=True)
                pipe.delete(current_key, f"{current_key}:history")
                pipe.publish(self.channel, encode_invalidation([key]))
                deleted, _ = await pipe.execute()
        return bool(deleted)

    async def _mget(self, keys: list[str]) -> list[bytes | None]:
        if isinstance(self._client, RedisCluster):
            # Users' keys live on several slots: one MGET per slot, answers in ``keys`` order.
            return await self._client.mget_nonatomic(keys)
        return await cast("Awaitable[list[bytes | None]]", self._client.mget(keys))

    async def _publish_after(self, key: str) -> None:
        """On a cluster the channel is a stream on another slot than the user's keys: announce
        the change once it is written (one server published it with the write)."""
        if isinstance(self._client, RedisCluster):
            await invalidation_stream.publish(
                self._client, self.channel, encode_invalidation([key])
            )

    async def ping(self) -> None:
        async with self._unavailable("ping"):
            await cast("Awaitable[bool]", self._client.ping())

    async def close(self) -> None:
        await self._client.aclose()

    @asynccontextmanager
    async def _unavailable(self, operation: str) -> AsyncIterator[None]:
        try:
            yield
        except (RedisError, OSError) as exc:
            raise ConsentUnavailable(f"redis consent store {operation}: {exc}") from exc


def _change_bytes(changes: Mapping[str, bool], at: float) -> bytes:
    return orjson.dumps({"changes": dict(changes), "at": at})


def _change_from_bytes(data: bytes) -> ConsentChange:
    change = orjson.loads(data)
    return ConsentChange(change["changes"], change["at"])
