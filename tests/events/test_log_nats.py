"""What the shared contract does not cover for the NATS JetStream backend: choosing it from
settings, failing fast (as ``EventLogUnavailable``) when the broker is unreachable, erasure
inside JetStream's duplicate window, and the consumer groups being JetStream's durable
consumers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.events.log import open_event_log
from app.events.log_nats import NatsEventLog
from app.events.types import EventLogUnavailable
from app.settings import EventLogSettings, Settings
from loadtests.server import free_port
from tests.events.conftest import make_event


def test_settings_select_the_nats_backend(tmp_path: Path) -> None:
    events = EventLogSettings(backend="nats", nats_url="nats://10.0.0.1:4222", nats_stream="S")
    log = open_event_log(Settings(home=tmp_path, events=events))
    assert isinstance(log, NatsEventLog)
    assert (log.url, log.stream, log.backend) == ("nats://10.0.0.1:4222", "S", "nats")


def test_redis_backend_without_a_redis_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RECSERVE_REDIS_URL"):
        open_event_log(Settings(home=tmp_path, events=EventLogSettings(backend="redis")))


async def test_unreachable_broker_is_unavailable_within_the_timeout() -> None:
    log = NatsEventLog(
        f"nats://127.0.0.1:{free_port()}",
        stream="NOBODY",
        dedupe_window_seconds=60,
        ack_wait_seconds=1,
        timeout_seconds=0.2,
    )
    started = time.perf_counter()
    with pytest.raises(EventLogUnavailable, match="nats event log append"):
        await log.append([make_event("e1")])
    assert time.perf_counter() - started < 2.0
    await log.close()


@pytest.mark.nats
@pytest.mark.integration
async def test_an_erased_id_is_stored_again_inside_the_duplicate_window(
    make_nats_log: Callable[[], NatsEventLog],
) -> None:
    log = make_nats_log()
    await log.append([make_event("e1", "alice")])
    assert await log.delete_user("alice") == 1
    # After an erasure the id is published under the user's new epoch, so it is stored again
    # although JetStream still remembers "e1" inside its duplicate window.
    assert (await log.append([make_event("e1", "alice")])).appended == ("e1",)
    assert (await log.append([make_event("e1", "alice")])).duplicates == ("e1",)


@pytest.mark.nats
@pytest.mark.integration
async def test_changed_settings_update_the_existing_stream_and_consumer(
    make_nats_log: Callable[[], NatsEventLog],
) -> None:
    first = make_nats_log()
    await first.append([make_event("e1")])
    await first.read("offline", "c", count=1, block_ms=0)
    reopened = NatsEventLog(
        first.url,
        stream=first.stream,
        dedupe_window_seconds=60,
        ack_wait_seconds=45,
        timeout_seconds=2,
    )
    try:
        assert (await reopened.append([make_event("e1"), make_event("e2")])).appended == ("e2",)
        assert [
            e.event.event_id for e in await reopened.read("offline", "c", count=5, block_ms=0)
        ] == ["e2"]
        js = await reopened._connected()
        assert (await js.stream_info(first.stream)).config.duplicate_window == 60
        erasures = await js.stream_info(f"KV_{first.stream}_erasures")
        assert erasures.config.max_age == 120
        # The group is the stream's durable consumer of that name; it took the new ack wait.
        consumer = await js.consumer_info(first.stream, "offline")
        assert (consumer.config.durable_name, consumer.config.ack_wait) == ("offline", 45)
        assert (consumer.num_ack_pending, consumer.num_pending) == (2, 0)
    finally:
        await reopened.close()


@pytest.mark.nats
@pytest.mark.integration
async def test_a_group_name_jetstream_cannot_take_is_refused(
    make_nats_log: Callable[[], NatsEventLog],
) -> None:
    log = make_nats_log()
    with pytest.raises(ValueError, match=r"consumer group 'a\.b'"):
        await log.read("a.b", "c", count=1, block_ms=0)


@pytest.mark.nats
@pytest.mark.integration
async def test_a_page_of_acks_is_recorded_when_ack_returns(
    make_nats_log: Callable[[], NatsEventLog],
) -> None:
    log = make_nats_log()
    await log.append([make_event(f"e{n}", f"u{n % 7}") for n in range(600)])
    page = await log.read("g", "c", count=500, block_ms=0)
    assert len(page) == 500
    await log.ack("g", [entry.position for entry in page])
    assert await log.lag("g") == 100  # no ack still in flight
    rest = await log.read("g", "c", count=500, block_ms=0)
    assert [entry.event.event_id for entry in rest] == [f"e{n}" for n in range(500, 600)]
