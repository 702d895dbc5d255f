"""The shared event log: one Redis Stream, read through consumer groups.

``append`` is one EVALSHA: for each event a Lua script runs ``SET <stream>:seen:<event_id> 1 NX
EX <window>`` and, only when that key was new, ``XADD <stream> * e <event bytes>``. Scripts run
atomically, so a batch is stored whole or not at all and a retried batch (e.g. after a timeout
whose write did land) comes back as duplicates instead of being stored twice. Durability beyond
Redis' memory is the server's: run it with ``appendonly yes`` (``appendfsync always`` for the
same guarantee as the SQLite log; ``everysec`` may lose the last second on a server crash).

Dedupe costs one small key (~100 bytes) per event for ``dedupe_window_seconds``.

On a Redis Cluster the stream is ``{<stream key>}`` and its dedupe keys
``{<stream key>}:seen:<id>``: one hash slot, so the script and every pipeline below touch
one master (the log is one ordered stream; it does not spread over masters, and its replica
takes over on failover).

Trimming (``max_stream_length``) runs after ``ack`` and removes only entries that every consumer
group has acknowledged: ``XTRIM MINID ~ <oldest entry any group still needs> LIMIT <excess>``.
So a slow or stopped consumer makes the stream grow past the bound rather than lose events, and
with no group at all nothing is trimmed. ``XADD MAXLEN`` was rejected because it trims blindly,
unconsumed entries included. Trimmed history is gone from ``iter_all`` too.

``delete_user`` scans the whole stream (``XRANGE`` in chunks of ``SCAN_CHUNK``, decoding every
entry): O(stream length) round trips / SCAN_CHUNK and CPU, acceptable for rare erasure requests.
It then rewrites the stream (``redis_compaction``), since ``XDEL`` leaves the bytes in place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.events.redis_compaction import rewrite_stream
from app.events.types import (
    AppendResult,
    Event,
    EventLogOutcomeUnknown,
    EventLogUnavailable,
    LoggedEvent,
)
from app.infra.redis_client import (
    RedisClient,
    decodes_responses,
    register_script,
    slot_tag,
    socket_timeout_of,
)

PAYLOAD_FIELD = b"e"
SCAN_CHUNK = 1000

# KEYS[1]: the stream; KEYS[i] (i >= 2): dedupe key of event i-1; ARGV[1]: dedupe TTL seconds;
# ARGV[i]: bytes of event i-1. Returns each event's entry id, or false (nil) for a duplicate.
_APPEND_SCRIPT = """
local ids = {}
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    ids[i - 1] = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
  else
    ids[i - 1] = false
  end
end
return ids
"""

Entry = tuple[bytes, dict[bytes, bytes]]  # (entry id, fields) as redis-py returns them


class RedisEventLog:
    """Event log on a Redis Stream. Takes ownership of ``client`` (``close()`` closes it); every
    call is bounded by the client's socket timeout, and any Redis failure is raised as
    ``EventLogUnavailable``."""

    backend = "redis"

    def __init__(
        self,
        client: RedisClient,
        *,
        stream_key: str,
        dedupe_window_seconds: int,
        max_stream_length: int | None = None,
    ) -> None:
        if decodes_responses(client):
            raise ValueError("the event log needs a Redis client with decode_responses=False")
        self._client = client
        self.stream_key = slot_tag(client, stream_key)
        self.dedupe_prefix = f"{self.stream_key}:seen:"
        self._dedupe_window_seconds = dedupe_window_seconds
        self._max_stream_length = max_stream_length
        self._append_script = register_script(client, _APPEND_SCRIPT)
        self._known_groups: set[str] = set()
        # A blocking XREADGROUP must return before the socket timeout fires; 50 ms of margin
        # covers the round trip.
        socket_timeout = socket_timeout_of(client)
        self._max_block_ms = None if socket_timeout is None else int(socket_timeout * 1000) - 50

    async def append(self, events: Sequence[Event]) -> AppendResult:
        """Dedupe and XADD the whole batch in one atomic script call."""
        if not events:
            return AppendResult((), ())
        keys = [self.stream_key, *(self.dedupe_prefix + event.event_id for event in events)]
        args: list[bytes | int] = [self._dedupe_window_seconds]
        args += (event.to_bytes() for event in events)
        async with self._unavailable("append"):
            ids = await self._append_script(keys=keys, args=args)
        appended = [e.event_id for e, entry_id in zip(events, ids, strict=True) if entry_id]
        duplicates = [e.event_id for e, entry_id in zip(events, ids, strict=True) if not entry_id]
        return AppendResult(tuple(appended), tuple(duplicates))

    async def read(
        self, consumer_group: str, consumer: str, *, count: int, block_ms: int
    ) -> list[LoggedEvent]:
        """XREADGROUP ``0`` (own pending) then ``>`` (new) for the rest of ``count``; blocks
        only when nothing is pending. ``block_ms`` must stay under the socket timeout."""
        if self._max_block_ms is not None and block_ms > self._max_block_ms:
            raise ValueError(
                f"block_ms={block_ms} would outlast the client's socket timeout; "
                f"use at most {self._max_block_ms}"
            )
        async with self._unavailable("read"):
            await self._ensure_group(consumer_group)
            pending = await self._read_group(consumer_group, consumer, "0", count, None)
            logged = await self._decode_or_ack(consumer_group, pending)
            if len(logged) < count:
                block = None if logged or block_ms <= 0 else block_ms
                fresh = await self._read_group(
                    consumer_group, consumer, ">", count - len(logged), block
                )
                logged += await self._decode_or_ack(consumer_group, fresh)
        return logged

    async def claim_idle(
        self, consumer_group: str, consumer: str, *, min_idle_ms: int, count: int
    ) -> list[LoggedEvent]:
        """XAUTOCLAIM from the start of the group's pending list."""
        async with self._unavailable("claim_idle"):
            await self._ensure_group(consumer_group)
            reply = await cast(
                "Awaitable[list[Any]]",
                self._client.xautoclaim(
                    self.stream_key, consumer_group, consumer, min_idle_ms, "0-0", count=count
                ),
            )
            return await self._decode_or_ack(consumer_group, reply[1])

    async def ack(self, consumer_group: str, positions: Sequence[str]) -> None:
        """XACK, then trim acknowledged history when a length bound is configured."""
        if not positions:
            return
        async with self._unavailable("ack"):
            await cast(
                "Awaitable[int]", self._client.xack(self.stream_key, consumer_group, *positions)
            )
            if self._max_stream_length is not None:
                await self._trim_acked_history(self._max_stream_length)

    async def lag(self, consumer_group: str) -> int:
        """Pending plus undelivered entries of the group, from XINFO GROUPS. Redis cannot say
        how many are undelivered once entries were deleted mid-stream; then they are counted."""
        async with self._unavailable("lag"):
            group = next(
                (g for g in await self._groups() if _text(g["name"]) == consumer_group), None
            )
            if group is None:
                return int(await cast("Awaitable[int]", self._client.xlen(self.stream_key)))
            undelivered = group.get("lag")
            if undelivered is None:
                undelivered = await self._count_after(_text(group["last-delivered-id"]))
            return int(group["pending"]) + int(undelivered)

    async def iter_all(self, after: str | None = None, limit: int = 10_000) -> list[LoggedEvent]:
        """XRANGE from just after ``after``."""
        async with self._unavailable("iter_all"):
            entries = await self._range_after(after, limit)
        return [_decode(entry) for entry in entries]

    async def delete_user(self, user_id: str) -> int:
        """Scan the stream; XDEL the user's entries, DEL their dedupe keys and XACK them in every
        group, one pipeline per chunk."""
        deleted = 0
        after: str | None = None
        async with self._unavailable("delete_user"):
            groups = [_text(g["name"]) for g in await self._groups()]
            while entries := await self._range_after(after, SCAN_CHUNK):
                after = _text(entries[-1][0])
                mine = [_decode(entry) for entry in entries]
                mine = [logged for logged in mine if logged.event.user_id == user_id]
                if not mine:
                    continue
                positions = [logged.position for logged in mine]
                # One MULTI on one server; on a cluster an ordered pipeline to the stream's
                # master (redis-py's asyncio cluster transactions block the event loop), which a
                # repeated erasure completes if it stops half-way.
                pipe = self._client.pipeline(transaction=isinstance(self._client, Redis))
                pipe.xdel(self.stream_key, *positions)
                pipe.delete(*(self.dedupe_prefix + logged.event.event_id for logged in mine))
                for group in groups:
                    pipe.xack(self.stream_key, group, *positions)
                await pipe.execute()
                deleted += len(mine)
            if deleted:
                await rewrite_stream(self._client, self.stream_key)
        return deleted

    async def ping(self) -> None:
        """PING; raises ``EventLogUnavailable`` when Redis does not answer."""
        async with self._unavailable("ping"):
            await cast("Awaitable[bool]", self._client.ping())

    async def close(self) -> None:
        """Close the client and its connection pool."""
        await self._client.aclose()

    @asynccontextmanager
    async def _unavailable(self, operation: str) -> AsyncIterator[None]:
        try:
            yield
        except (RedisError, OSError) as exc:
            if "NOGROUP" in str(exc):  # the stream was deleted: recreate groups on next use
                self._known_groups.clear()
            if operation == "append" and _maybe_applied(exc):
                raise EventLogOutcomeUnknown(f"redis event log append: {exc}") from exc
            raise EventLogUnavailable(f"redis event log {operation}: {exc}") from exc

    async def _ensure_group(self, group: str) -> None:
        """XGROUP CREATE ... 0 MKSTREAM once per group and process: a new group starts at the
        beginning of the stream."""
        if group in self._known_groups:
            return
        try:
            await cast(
                "Awaitable[bool]",
                self._client.xgroup_create(self.stream_key, group, id="0", mkstream=True),
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._known_groups.add(group)

    async def _read_group(
        self, group: str, consumer: str, start: str, count: int, block: int | None
    ) -> list[Entry]:
        reply = await cast(
            "Awaitable[list[Any] | None]",
            self._client.xreadgroup(
                group, consumer, {self.stream_key: start}, count=count, block=block
            ),
        )
        return reply[0][1] if reply else []

    async def _decode_or_ack(self, group: str, entries: list[Entry]) -> list[LoggedEvent]:
        """Decode entries; a pending entry deleted since delivery (empty fields) is acked so
        it stops coming back."""
        gone = [_text(entry_id) for entry_id, fields in entries if not fields]
        if gone:
            await cast("Awaitable[int]", self._client.xack(self.stream_key, group, *gone))
        return [_decode(entry) for entry in entries if entry[1]]

    async def _groups(self) -> list[dict[str, Any]]:
        if not await cast("Awaitable[int]", self._client.exists(self.stream_key)):
            return []
        return await cast(
            "Awaitable[list[dict[str, Any]]]", self._client.xinfo_groups(self.stream_key)
        )

    async def _range_after(self, after: str | None, count: int) -> list[Entry]:
        start = "-" if after is None else f"({after}"
        return await cast(
            "Awaitable[list[Entry]]", self._client.xrange(self.stream_key, start, "+", count=count)
        )

    async def _count_after(self, entry_id: str) -> int:
        counted = 0
        while entries := await self._range_after(entry_id, SCAN_CHUNK):
            counted += len(entries)
            entry_id = _text(entries[-1][0])
        return counted

    async def _trim_acked_history(self, max_length: int) -> None:
        excess = await cast("Awaitable[int]", self._client.xlen(self.stream_key)) - max_length
        if excess <= 0:
            return
        groups = await self._groups()
        if not groups:  # nobody has acked anything, so nothing may go
            return
        needed: list[tuple[int, int]] = []
        for group in groups:
            if int(group["pending"]):
                summary = await cast(
                    "Awaitable[dict[str, Any]]",
                    self._client.xpending(self.stream_key, group["name"]),
                )
                needed.append(_parse_id(_text(summary["min"])))
            else:
                ms, seq = _parse_id(_text(group["last-delivered-id"]))
                needed.append((ms, seq + 1))  # everything after the last delivered entry
        ms, seq = min(needed)
        await cast(
            "Awaitable[int]",
            self._client.xtrim(
                self.stream_key, minid=f"{ms}-{seq}", approximate=True, limit=excess
            ),
        )


def _maybe_applied(exc: Exception) -> bool:
    """Whether Redis may have run the command: anything but failing to connect, or Redis
    refusing it with an error reply."""
    if "connecting" in str(exc):
        return False
    return isinstance(exc, RedisTimeoutError | RedisConnectionError | OSError)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _decode(entry: Entry) -> LoggedEvent:
    position = _text(entry[0])
    return LoggedEvent(position, Event.from_bytes(entry[1][PAYLOAD_FIELD], position))
