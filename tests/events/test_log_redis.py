"""What only the Redis Stream log has: acked-only trimming, the dedupe window, bounded failures
and the factory."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from app.events.log import open_event_log
from app.events.log_redis import RedisEventLog
from app.events.types import EventLogOutcomeUnknown, EventLogUnavailable
from app.settings import Settings
from tests.events.conftest import REDIS_URL, RedisLogFactory, make_event
from tests.integration.conftest import PrivateRedis
from tests.integration.conftest import private_redis as private_redis  # fixture

pytestmark = [pytest.mark.redis, pytest.mark.integration]


async def test_trimming_removes_only_history_every_group_acked(
    make_redis_log: RedisLogFactory,
) -> None:
    log = await make_redis_log(max_stream_length=100)
    for start in range(0, 300, 100):
        await log.append([make_event(f"e{n}") for n in range(start, start + 100)])
    slow = await log.read("slow", "c", count=50, block_ms=0)  # 50 delivered, none acked
    fast = await log.read("fast", "c", count=300, block_ms=0)
    await log.ack("fast", [entry.position for entry in fast])
    assert len(await log.iter_all(limit=1000)) == 300  # "slow" still needs e0...

    await log.ack("slow", [entry.position for entry in slow])
    await log.ack("slow", [])  # nothing to ack: no trim either
    remaining = [entry.event.event_id for entry in await log.iter_all(limit=1000)]
    # Whole stream nodes go (approximate trim), never one at or past slow's first unacked event.
    assert len(remaining) < 300
    assert remaining[-250:] == [f"e{n}" for n in range(50, 300)]
    assert await log.lag("slow") == 250
    assert [e.event.event_id for e in await log.read("slow", "c", count=1, block_ms=0)] == ["e50"]


async def test_without_any_group_nothing_is_trimmed(make_redis_log: RedisLogFactory) -> None:
    log = await make_redis_log(max_stream_length=1)
    await log.append([make_event(f"e{n}") for n in range(200)])
    await log.ack("nobody", ["0-1"])
    assert len(await log.iter_all(limit=1000)) == 200


async def test_an_id_is_a_duplicate_only_within_the_dedupe_window(
    make_redis_log: RedisLogFactory,
) -> None:
    log = await make_redis_log(dedupe_window_seconds=1)
    await log.append([make_event("e1")])
    assert (await log.append([make_event("e1")])).duplicates == ("e1",)
    await asyncio.sleep(1.1)
    assert (await log.append([make_event("e1")])).appended == ("e1",)


async def test_a_deleted_stream_fails_one_read_then_starts_over(
    make_redis_log: RedisLogFactory,
) -> None:
    log = await make_redis_log()
    await log.append([make_event("e1")])
    assert len(await log.read("g", "c", count=10, block_ms=0)) == 1
    admin = Redis.from_url(REDIS_URL)
    await admin.delete(log.stream_key)
    await admin.aclose()
    with pytest.raises(EventLogUnavailable, match="NOGROUP"):
        await log.read("g", "c", count=10, block_ms=0)
    await log.append([make_event("e2")])
    assert [e.event.event_id for e in await log.read("g", "c", count=10, block_ms=0)] == ["e2"]


async def test_unreachable_redis_raises_unavailable_fast() -> None:
    log = RedisEventLog(
        Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=0.5, socket_connect_timeout=0.5),
        stream_key="unused",
        dedupe_window_seconds=60,
    )
    started = time.perf_counter()
    with pytest.raises(EventLogUnavailable, match="append") as refused:
        await log.append([make_event("e1")])
    assert not isinstance(refused.value, EventLogOutcomeUnknown)  # never sent: nothing stored
    with pytest.raises(EventLogUnavailable, match="ping"):
        await log.ping()
    assert time.perf_counter() - started < 0.5
    await log.close()


async def test_hanging_redis_fails_append_within_the_socket_timeout() -> None:
    async def accept_and_never_answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(accept_and_never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    log = RedisEventLog(
        Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=0.1),
        stream_key="unused",
        dedupe_window_seconds=60,
    )
    async with server:
        started = time.perf_counter()
        with pytest.raises(EventLogOutcomeUnknown):  # sent, never confirmed
            await log.append([make_event("e1")])
        assert time.perf_counter() - started < 0.5
    await log.close()


async def test_a_block_longer_than_the_socket_timeout_is_refused(
    make_redis_log: RedisLogFactory,
) -> None:
    log = await make_redis_log(socket_timeout=0.5)
    with pytest.raises(ValueError, match="at most 450"):
        await log.read("g", "c", count=1, block_ms=1000)


def test_a_decoding_client_is_refused() -> None:
    with pytest.raises(ValueError, match="decode_responses"):
        RedisEventLog(
            Redis.from_url(REDIS_URL, decode_responses=True),
            stream_key="unused",
            dedupe_window_seconds=60,
        )


async def test_factory_with_redis_url_opens_the_stream_with_event_settings(
    tmp_path: Path,
) -> None:
    settings = Settings(
        home=tmp_path,
        redis_url=REDIS_URL,
        events={"stream_key": "test:factory:events", "socket_timeout_seconds": 0.3},
    )
    log = open_event_log(settings)
    assert isinstance(log, RedisEventLog)
    assert log.stream_key == "test:factory:events"
    with pytest.raises(ValueError, match="at most 250"):  # 0.3 s socket timeout took effect
        await log.read("g", "c", count=1, block_ms=1000)
    await log.close()


async def test_erasure_rewrites_the_stream_keeping_groups_pending_and_ids(
    make_redis_log: RedisLogFactory,
) -> None:
    log = await make_redis_log(ack_wait_seconds=0.05)
    # No three characters in common with the payload's field names: RDB's LZF compression
    # (DUMP's too) then keeps the id's first occurrence literal, so a scan finds it.
    erased = "QzX8vK2wJ9pRmT7y"
    events = [make_event(f"e{n}", erased if n % 3 == 0 else "kept") for n in range(30)]
    await log.append(events)
    delivered = await log.read("busy", "c1", count=10, block_ms=0)
    await log.ack("busy", [delivered[1].position])
    await asyncio.sleep(0.06)
    await log.read("busy", "c1", count=9, block_ms=0)  # a second delivery of the pending ones
    client = Redis.from_url(REDIS_URL)
    try:
        await client.xgroup_create(log.stream_key, "idle", id="0")
        assert erased.encode() in await client.dump(log.stream_key)
        before = await client.xinfo_stream(log.stream_key)
        pending_before = await client.xpending_range(log.stream_key, "busy", "-", "+", 100)

        assert await log.delete_user(erased) == 10

        # DUMP is what RDB snapshots and the AOF's RDB preamble write: the bytes are gone.
        assert erased.encode() not in await client.dump(log.stream_key)
        after = await client.xinfo_stream(log.stream_key)
        assert after["last-generated-id"] == before["last-generated-id"]
        assert after["entries-added"] == before["entries-added"]
        assert after["length"] == 20
        kept = {d.position.encode() for d in delivered if d.event.user_id == "kept"}
        assert [_owner(p) for p in pending_before if p["message_id"] in kept] == [
            _owner(p) for p in await client.xpending_range(log.stream_key, "busy", "-", "+", 100)
        ]
        groups = {g["name"]: g for g in await client.xinfo_groups(log.stream_key)}
        assert groups[b"busy"]["last-delivered-id"] == delivered[-1].position.encode()
        assert groups[b"idle"]["pending"] == 0
    finally:
        await client.aclose()
    # Consumers carry on: the busy group's pending entries, then only new events.
    assert [e.event.event_id for e in await log.read("idle", "c2", count=100, block_ms=0)] == [
        e.event_id for e in events if e.user_id == "kept"
    ]
    await log.append([make_event("e30", "kept")])
    again = await log.read("busy", "c1", count=100, block_ms=0)
    assert [e.event.event_id for e in again][-1] == "e30"
    assert erased not in {e.event.user_id for e in again}


def _owner(pending: dict[str, Any]) -> tuple[bytes, bytes, int]:
    return pending["message_id"], pending["consumer"], pending["times_delivered"]


async def test_a_write_redis_took_but_did_not_confirm_in_time_is_safe_to_retry(
    private_redis: PrivateRedis,
) -> None:
    log = RedisEventLog(
        Redis.from_url(private_redis.url, socket_timeout=0.2),
        stream_key="retry-after-timeout",
        dedupe_window_seconds=60,
    )
    batch = [make_event(f"t{n}") for n in range(5)]
    # Connected and the script loaded: the batch is sent whole and waits in Redis' socket.
    await log.append([make_event("before")])
    private_redis.pause()
    try:
        with pytest.raises(EventLogOutcomeUnknown):
            await log.append(batch)
    finally:
        private_redis.resume()
    retried = await log.append(batch)
    assert retried.duplicates == tuple(e.event_id for e in batch)  # stored by the first try
    assert len(await log.iter_all()) == 6
    await log.close()
