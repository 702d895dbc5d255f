"""The cross-worker invalidation channel on a Redis Cluster: a capped stream on one key.

On one server, invalidations travel over pub/sub (``PUBLISH`` in the writer's transaction).
redis-py's asyncio ``RedisCluster`` has no pub/sub client, and its asyncio ``PubSub`` cannot
``SSUBSCRIBE`` (sharded pub/sub), so on a cluster the channel is a stream ``{<channel>}``
instead: writers ``XADD`` each message (capped near ``STREAM_MAX_LENGTH`` entries), and each
worker's reader blocks on ``XREAD`` from the last entry it saw. The cluster client routes both to
the master owning that key, and after a failover to the promoted replica, like any other key.

A reader treats any error as a lost subscription (its caller clears what it holds), exactly as
with pub/sub: entries the dead master had not replicated are then never read, and need not be.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

from redis.asyncio import RedisCluster

from app.infra.redis_client import register_script

MESSAGE_FIELD = b"m"
# A message telling readers to drop everything they hold (they may have missed a message).
CLEAR_ALL = b"*"
# Readers only ever wait for entries newer than the last they saw, so the stream needs to hold
# just what a reader may lag behind by between two reads.
STREAM_MAX_LENGTH = 1000
READ_BLOCK_MS = 5000
READ_COUNT = 100


# KEYS[1]: the stream. ARGV: the clear-all message, the length cap.
_FORGET_SCRIPT = """
redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[1])
"""


def stream_key(channel: str) -> str:
    """The stream standing for ``channel`` (hash-tagged: the whole key is the tag)."""
    return f"{{{channel}}}"


async def publish(client: RedisCluster, channel: str, message: bytes) -> None:
    """Append ``message`` to the channel's stream."""
    await client.xadd(
        stream_key(channel),
        {MESSAGE_FIELD: message},
        maxlen=STREAM_MAX_LENGTH,
        approximate=True,
    )


async def forget(client: RedisCluster, channel: str) -> None:
    """Remove every message of ``channel`` (an erased user's id may be among them; trimming to
    nothing frees the bytes, which ``XDEL`` would leave in place) and, in the same script, tell
    every reader to drop everything it holds, since it may not have read a removed message yet.
    The stream is trimmed, not deleted: it keeps its last ID, so the clear-all message gets a
    newer one. A deleted stream starts its IDs afresh, and within the millisecond of the last
    message the new ID could repeat it, which readers waiting past that ID would never see."""
    script = register_script(client, _FORGET_SCRIPT)
    await script(keys=[stream_key(channel)], args=[CLEAR_ALL, STREAM_MAX_LENGTH])


async def messages(
    client: RedisCluster, channel: str, on_ready: Callable[[], Awaitable[None] | None]
) -> AsyncIterator[bytes]:
    """Every message appended to ``channel`` from now on, in order; ``on_ready`` is called once
    the position to read from is known (from then on no message is missed). Raises the client's
    error when the connection fails: the caller starts again (and is ready again) later."""
    key = stream_key(channel)
    last = await cast("Awaitable[list[Any]]", client.xrevrange(key, "+", "-", count=1))
    position: bytes | str = last[0][0] if last else "0-0"
    ready = on_ready()
    if ready is not None:
        await ready
    while True:
        reply = await cast(
            "Awaitable[list[Any] | None]",
            client.xread({key: position}, count=READ_COUNT, block=READ_BLOCK_MS),
        )
        for _, entries in reply or []:
            for entry_id, fields in entries:
                position = entry_id
                yield fields[MESSAGE_FIELD]
