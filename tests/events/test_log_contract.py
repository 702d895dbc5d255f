"""One contract, every event-log backend: the same tests run on SQLite and on a Redis Stream
(a real Redis server and a real Redis Cluster). A new backend (Kafka, NATS...) joins by adding a
parameter to ``open_log``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from app.events.log import EventLog
from app.events.types import LoggedEvent
from tests.events.conftest import make_event

OpenLog = Callable[[], Awaitable[EventLog]]


def ids(logged: list[LoggedEvent]) -> list[str]:
    return [entry.event.event_id for entry in logged]


async def test_append_read_ack_round_trip_keeps_order_and_content(event_log: EventLog) -> None:
    sent = [
        make_event("e1", "u1", "i1", type="purchase", value=9.5, context={"page": "home"}),
        make_event("e2", "u2", "i2"),
        make_event("e3", "u1", "i3", type="rate", value=4.0),
    ]
    result = await event_log.append(sent)
    assert result.appended == ("e1", "e2", "e3")
    assert result.duplicates == ()

    got = await event_log.read("profiles", "c1", count=10, block_ms=0)
    assert [entry.event for entry in got] == sent
    await event_log.ack("profiles", [entry.position for entry in got])
    assert await event_log.read("profiles", "c1", count=10, block_ms=0) == []


async def test_read_pages_by_count(event_log: EventLog) -> None:
    await event_log.append([make_event(f"e{n}") for n in range(5)])
    first = await event_log.read("g", "c1", count=2, block_ms=0)
    await event_log.ack("g", [entry.position for entry in first])
    second = await event_log.read("g", "c1", count=2, block_ms=0)
    assert ids(first) == ["e0", "e1"]
    assert ids(second) == ["e2", "e3"]


async def test_duplicates_across_batches_and_within_a_batch(event_log: EventLog) -> None:
    await event_log.append([make_event("a"), make_event("b")])
    result = await event_log.append(
        [make_event("b"), make_event("c"), make_event("c", item_id="other"), make_event("d")]
    )
    assert result.appended == ("c", "d")
    assert result.duplicates == ("b", "c")
    replay = await event_log.iter_all()
    assert ids(replay) == ["a", "b", "c", "d"]
    assert replay[2].event.item_id == "i1"  # the first "c" was kept, the repeat dropped


async def test_two_consumers_of_one_group_split_the_work(event_log: EventLog) -> None:
    await event_log.append([make_event(f"e{n}") for n in range(6)])
    first = await event_log.read("g", "c1", count=3, block_ms=0)
    second = await event_log.read("g", "c2", count=10, block_ms=0)
    assert ids(first) == ["e0", "e1", "e2"]
    assert ids(second) == ["e3", "e4", "e5"]


async def test_each_group_sees_every_event(event_log: EventLog) -> None:
    await event_log.append([make_event("e1"), make_event("e2")])
    assert ids(await event_log.read("profiles", "c", count=10, block_ms=0)) == ["e1", "e2"]
    assert ids(await event_log.read("archive", "c", count=10, block_ms=0)) == ["e1", "e2"]


async def test_unacked_events_come_back_to_their_consumer_before_new_ones(
    event_log: EventLog,
) -> None:
    await event_log.append([make_event("e1"), make_event("e2")])
    delivered = await event_log.read("g", "c1", count=10, block_ms=0)
    await event_log.ack("g", [delivered[0].position])  # e2 is processed but never acked
    await event_log.append([make_event("e3")])

    assert ids(await event_log.read("g", "c1", count=10, block_ms=0)) == ["e2", "e3"]
    assert ids(await event_log.read("g", "c2", count=10, block_ms=0)) == []  # not another's


async def test_claim_idle_moves_a_dead_consumers_events(event_log: EventLog) -> None:
    await event_log.append([make_event("e1"), make_event("e2")])
    await event_log.read("g", "dead", count=10, block_ms=0)
    assert await event_log.claim_idle("g", "alive", min_idle_ms=60_000, count=10) == []

    await asyncio.sleep(0.02)
    claimed = await event_log.claim_idle("g", "alive", min_idle_ms=10, count=10)
    assert ids(claimed) == ["e1", "e2"]
    assert ids(await event_log.read("g", "alive", count=10, block_ms=0)) == ["e1", "e2"]
    assert await event_log.read("g", "dead", count=10, block_ms=0) == []


async def test_lag_counts_undelivered_and_unacked(event_log: EventLog) -> None:
    assert await event_log.lag("g") == 0
    await event_log.append([make_event(f"e{n}") for n in range(5)])
    assert await event_log.lag("g") == 5  # a group that never read has everything ahead
    delivered = await event_log.read("g", "c", count=3, block_ms=0)
    assert await event_log.lag("g") == 5  # delivered is not done
    await event_log.ack("g", [entry.position for entry in delivered[:2]])
    assert await event_log.lag("g") == 3
    assert await event_log.lag("other") == 5


async def test_blocking_read_waits_for_an_append_from_another_process(open_log: OpenLog) -> None:
    reader, writer = await open_log(), await open_log()
    await reader.read("g", "c", count=10, block_ms=0)  # creates the group

    async def append_later() -> None:
        await asyncio.sleep(0.1)
        await writer.append([make_event("late")])

    started = time.perf_counter()
    task = asyncio.create_task(append_later())
    got = await reader.read("g", "c", count=10, block_ms=400)
    elapsed = time.perf_counter() - started
    await task
    assert ids(got) == ["late"]
    assert 0.09 <= elapsed < 0.35


async def test_blocking_read_returns_empty_after_block_ms(event_log: EventLog) -> None:
    started = time.perf_counter()
    assert await event_log.read("g", "c", count=10, block_ms=100) == []
    assert 0.09 <= time.perf_counter() - started < 0.4


async def test_iter_all_pages_through_the_whole_log(event_log: EventLog) -> None:
    await event_log.append([make_event(f"e{n}") for n in range(5)])
    await event_log.append([make_event("e5")])
    pages: list[list[str]] = []
    after: str | None = None
    while page := await event_log.iter_all(after=after, limit=2):
        pages.append(ids(page))
        after = page[-1].position
    assert pages == [["e0", "e1"], ["e2", "e3"], ["e4", "e5"]]


async def test_delete_user_erases_their_events_everywhere(event_log: EventLog) -> None:
    await event_log.append(
        [make_event("a1", "alice"), make_event("b1", "bob"), make_event("a2", "alice")]
    )
    delivered = await event_log.read("g", "c", count=1, block_ms=0)  # a1 pending
    assert ids(delivered) == ["a1"]

    assert await event_log.delete_user("alice") == 2
    assert await event_log.delete_user("alice") == 0
    assert ids(await event_log.iter_all()) == ["b1"]
    assert await event_log.lag("g") == 1  # b1 only; a1's pending entry is gone
    assert ids(await event_log.read("g", "c", count=10, block_ms=0)) == ["b1"]
    # Erasure forgets the ids too: a new event under an old id is stored.
    assert (await event_log.append([make_event("a1", "alice")])).appended == ("a1",)


async def test_a_second_log_on_the_same_storage_sees_appends_and_dedupes(
    open_log: OpenLog,
) -> None:
    first, second = await open_log(), await open_log()
    await first.append([make_event("e1")])
    assert (await second.append([make_event("e1"), make_event("e2")])).duplicates == ("e1",)
    assert ids(await first.iter_all()) == ["e1", "e2"]


async def test_empty_append_and_ack_are_no_ops(event_log: EventLog) -> None:
    result = await event_log.append([])
    assert (result.appended, result.duplicates) == ((), ())
    await event_log.ack("g", [])
    assert await event_log.iter_all() == []


async def test_ping_answers(event_log: EventLog) -> None:
    await event_log.ping()
