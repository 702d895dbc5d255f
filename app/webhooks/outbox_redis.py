"""The shared outbox: Redis keys under one prefix, changed only by Lua scripts so every step
(enqueue, claim, retry, bury, replay) is atomic across workers and hosts.

Keys: ``P:msg:<id>`` (hash: endpoint, kind, body, created_at, attempts, last_error, owner and
``user_key``, the pseudonym of the user the body is about, when there is one),
``P:due`` (sorted set, score = next attempt or, while leased, lease end), ``P:enqueued``
(score = created_at, for the age gauge) and ``P:dead`` (score = when it was parked; a dead
delivery keeps its hash). Scripts read the clock with ``TIME``: all workers share Redis's
clock, so a host with a skewed clock cannot steal leases. Durability is Redis's (AOF with
``appendfsync everysec`` or ``always`` in production).

Erasure (``delete_user``, an admin path) SCANs the ``msg`` hashes for the user's key, then one
script deletes those still holding it from every index.

On a Redis Cluster the prefix is hash-tagged (``{P}:msg:<id>``, ``{P}:due``, ...): the scripts
build message keys from the prefix, so every key of the outbox must live on one slot (one
master, whose replica takes over on failover).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.exceptions import RedisError

from app.infra.redis_client import RedisClient, register_script, slot_tag
from app.infra.redis_scan import scan_pages
from app.webhooks.types import DeadLetter, Delivery, OutboxStats, OutboxUnavailable

T = TypeVar("T")

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: due, enqueued. ARGV: msg prefix, then 7 per delivery (user key "" when none).
_ENQUEUE = (
    _NOW
    + """
local new = 0
for i = 2, #ARGV, 7 do
    local key = ARGV[1] .. ARGV[i]
    if redis.call('EXISTS', key) == 0 then
        redis.call('HSET', key, 'endpoint', ARGV[i + 1], 'kind', ARGV[i + 2],
                   'body', ARGV[i + 3], 'created_at', ARGV[i + 4], 'attempts', ARGV[i + 5])
        if ARGV[i + 6] ~= '' then redis.call('HSET', key, 'user_key', ARGV[i + 6]) end
        redis.call('ZADD', KEYS[1], now, ARGV[i])
        redis.call('ZADD', KEYS[2], ARGV[i + 4], ARGV[i])
        new = new + 1
    end
end
return new
"""
)

_FIELDS = ("endpoint", "kind", "body", "created_at", "attempts", "last_error", "user_key")

# KEYS: due. ARGV: msg prefix, worker, limit, lease seconds.
_CLAIM = (
    _NOW
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
    local key = ARGV[1] .. id
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), id)
    redis.call('HSET', key, 'owner', ARGV[2])
    table.insert(out, id)
    table.insert(out, redis.call('HMGET', key, 'endpoint', 'kind', 'body', 'created_at',
                                 'attempts', 'last_error', 'user_key'))
end
return out
"""
)

# KEYS: due, enqueued, dead. ARGV: msg prefix, id, worker, delay seconds (or "dead"), error.
_FAIL = (
    _NOW
    + """
local key = ARGV[1] .. ARGV[2]
if redis.call('ZSCORE', KEYS[1], ARGV[2]) == false
   or redis.call('HGET', key, 'owner') ~= ARGV[3] then
    return 0
end
redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'last_error', ARGV[5])
redis.call('HDEL', key, 'owner')
if ARGV[4] == 'dead' then
    redis.call('ZREM', KEYS[1], ARGV[2])
    redis.call('ZREM', KEYS[2], ARGV[2])
    redis.call('ZADD', KEYS[3], now, ARGV[2])
else
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
end
return 1
"""
)

# KEYS: due, enqueued, dead. ARGV: msg prefix, id.
_COMPLETE = """
if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then
    redis.call('ZREM', KEYS[2], ARGV[2])
    redis.call('DEL', ARGV[1] .. ARGV[2])
end
return 0
"""

# KEYS: due, enqueued, dead. ARGV: msg prefix, ids... (none: every dead letter).
_REPLAY = (
    _NOW
    + """
local ids = {}
if #ARGV == 1 then ids = redis.call('ZRANGE', KEYS[3], 0, -1) else
    for i = 2, #ARGV do table.insert(ids, ARGV[i]) end
end
local moved = 0
for _, id in ipairs(ids) do
    if redis.call('ZREM', KEYS[3], id) == 1 then
        local key = ARGV[1] .. id
        redis.call('HSET', key, 'attempts', 0)
        redis.call('ZADD', KEYS[1], now, id)
        redis.call('ZADD', KEYS[2], redis.call('HGET', key, 'created_at'), id)
        moved = moved + 1
    end
end
return moved
"""
)

# KEYS: due, enqueued, dead. ARGV: msg prefix, user key, ids... Deletes each id still the user's.
_DELETE_USER = """
local deleted = 0
for i = 3, #ARGV do
    local key = ARGV[1] .. ARGV[i]
    if redis.call('HGET', key, 'user_key') == ARGV[2] then
        for _, index in ipairs(KEYS) do redis.call('ZREM', index, ARGV[i]) end
        redis.call('DEL', key)
        deleted = deleted + 1
    end
end
return deleted
"""

# KEYS: due, enqueued, dead. Returns depth, oldest enqueue time (nil when empty), dead count and
# the server's TIME: a script, as a cluster pipeline cannot send TIME (it has no key).
_STATS = """
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local t = redis.call('TIME')
return {redis.call('ZCARD', KEYS[1]), oldest[2] or false, redis.call('ZCARD', KEYS[3]), t[1], t[2]}
"""


class RedisOutbox:
    """Outbox in Redis under ``key_prefix``; owns ``client`` and closes it."""

    backend = "redis"

    def __init__(self, client: RedisClient, *, key_prefix: str) -> None:
        self._client = client
        key_prefix = slot_tag(client, key_prefix)
        self._msg = f"{key_prefix}:msg:"
        self._due = f"{key_prefix}:due"
        self._enqueued = f"{key_prefix}:enqueued"
        self._dead = f"{key_prefix}:dead"
        self._enqueue = register_script(client, _ENQUEUE)
        self._claim = register_script(client, _CLAIM)
        self._fail = register_script(client, _FAIL)
        self._complete = register_script(client, _COMPLETE)
        self._replay = register_script(client, _REPLAY)
        self._delete_user = register_script(client, _DELETE_USER)
        self._stats = register_script(client, _STATS)

    async def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        args: list[str | bytes | float | int] = [self._msg]
        for d in deliveries:
            args += [d.delivery_id, d.endpoint, d.kind, d.body, repr(d.created_at), d.attempts]
            args.append(d.user_key or "")
        return int(await self._call(lambda: self._enqueue([self._due, self._enqueued], args)))

    async def claim(self, worker: str, *, limit: int, lease_seconds: float) -> list[Delivery]:
        flat = await self._call(
            lambda: self._claim([self._due], [self._msg, worker, limit, lease_seconds])
        )
        return [_delivery(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    async def complete(self, delivery_id: str) -> None:
        await self._call(lambda: self._complete(self._keys, [self._msg, delivery_id]))

    async def retry(
        self, delivery_id: str, worker: str, *, delay_seconds: float, error: str
    ) -> bool:
        args = [self._msg, delivery_id, worker, repr(delay_seconds), error]
        return bool(await self._call(lambda: self._fail(self._keys, args)))

    async def dead_letter(self, delivery_id: str, worker: str, *, error: str) -> bool:
        args = [self._msg, delivery_id, worker, "dead", error]
        return bool(await self._call(lambda: self._fail(self._keys, args)))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        async def read() -> list[DeadLetter]:
            parked = await self._client.zrange(self._dead, 0, limit - 1, withscores=True)
            async with self._client.pipeline(transaction=False) as pipe:
                for delivery_id, _ in parked:
                    pipe.hmget(self._msg + delivery_id.decode(), list(_FIELDS))
                fields = await pipe.execute()
            return [
                DeadLetter(_delivery(delivery_id, values), float(dead_at))
                for (delivery_id, dead_at), values in zip(parked, fields, strict=True)
            ]

        return await self._call(read)

    async def replay(self, delivery_ids: Sequence[str] | None = None) -> int:
        if delivery_ids is not None and not delivery_ids:
            return 0
        args = [self._msg, *(delivery_ids or ())]
        return int(await self._call(lambda: self._replay(self._keys, args)))

    async def stats(self) -> OutboxStats:
        async def read() -> OutboxStats:
            depth, oldest, dead, seconds, micros = await self._stats(self._keys)
            now = int(seconds) + int(micros) / 1e6
            age = max(0.0, now - float(oldest)) if oldest is not None else 0.0
            return OutboxStats(depth=int(depth), oldest_age_seconds=age, dead_letters=int(dead))

        return await self._call(read)

    async def delete_user(self, user_key: str) -> int:
        async def delete() -> int:
            deleted = 0
            async for keys in scan_pages(self._client, f"{self._msg}*"):
                async with self._client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.hget(key, "user_key")
                    owners: list[bytes | None] = await pipe.execute()
                ids = [
                    key.removeprefix(self._msg)
                    for key, owner in zip(keys, owners, strict=True)
                    if owner == user_key.encode()
                ]
                if ids:
                    args = [self._msg, user_key, *ids]
                    deleted += int(await self._delete_user(self._keys, args))
            return deleted

        return await self._call(delete)

    async def close(self) -> None:
        await self._client.aclose()

    @property
    def _keys(self) -> list[str]:
        return [self._due, self._enqueued, self._dead]

    async def _call(self, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await work()
        except (RedisError, OSError) as exc:
            raise OutboxUnavailable(f"redis webhook outbox: {exc}") from exc


def _delivery(delivery_id: bytes, values: Sequence[Any]) -> Delivery:
    endpoint, kind, body, created_at, attempts, last_error, user_key = values
    return Delivery(
        delivery_id=delivery_id.decode(),
        endpoint=endpoint.decode(),
        kind=kind.decode(),
        body=bytes(body),
        created_at=float(created_at),
        attempts=int(attempts),
        last_error=None if last_error is None else last_error.decode(),
        user_key=None if user_key is None else user_key.decode(),
    )
