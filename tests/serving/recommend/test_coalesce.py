"""ReadCoalescer: one fetch per event-loop pass, every waiter answered, failures shared."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from app.serving.recommend.coalesce import LONE_READS_BEFORE_SKIPPING, PROBE_EVERY, ReadCoalescer


class RecordingFetch:
    """Answers ``key -> f"{key}@{version}"``; records each batch; fails while ``failing``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.version = 1
        self.failing = False

    async def __call__(self, keys: Sequence[str]) -> Mapping[str, str]:
        self.batches.append(list(keys))
        if self.failing:
            raise LookupError("store down")
        return {key: f"{key}@{self.version}" for key in keys}


async def test_requests_of_one_pass_share_one_fetch_in_arrival_order() -> None:
    fetch = RecordingFetch()
    reads = ReadCoalescer(fetch)
    answers = await asyncio.gather(*(reads.get(key) for key in ["c", "a", "b"]))
    assert answers == ["c@1", "a@1", "b@1"]
    assert fetch.batches == [["c", "a", "b"]]


async def test_a_key_asked_twice_in_a_pass_is_fetched_once_and_answered_twice() -> None:
    fetch = RecordingFetch()
    reads = ReadCoalescer(fetch)
    assert await asyncio.gather(reads.get("a"), reads.get("a")) == ["a@1", "a@1"]
    assert fetch.batches == [["a"]]


async def test_sequential_requests_each_read_afresh() -> None:
    fetch = RecordingFetch()
    reads = ReadCoalescer(fetch)
    assert await reads.get("a") == "a@1"
    fetch.version = 2  # a write between two requests is seen by the second
    assert await reads.get("a") == "a@2"
    assert fetch.batches == [["a"], ["a"]]


async def test_a_request_arriving_in_a_later_pass_gets_a_batch_of_its_own() -> None:
    fetch = RecordingFetch()
    reads = ReadCoalescer(fetch)

    async def late(key: str) -> str:
        await asyncio.sleep(0.001)
        return await reads.get(key)

    assert await asyncio.gather(reads.get("a"), late("b")) == ["a@1", "b@1"]
    assert fetch.batches == [["a"], ["b"]]


async def test_a_failing_fetch_fails_every_waiter_and_the_next_batch_recovers() -> None:
    fetch = RecordingFetch()
    reads = ReadCoalescer(fetch)
    fetch.failing = True
    outcomes = await asyncio.gather(reads.get("a"), reads.get("b"), return_exceptions=True)
    assert [type(o) for o in outcomes] == [LookupError, LookupError]
    fetch.failing = False
    assert await reads.get("a") == "a@1"


class SlowFetch:
    """Answers ``key -> key.upper()`` once released; records each batch."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.batches: list[list[str]] = []

    async def __call__(self, keys: Sequence[str]) -> Mapping[str, str]:
        self.batches.append(list(keys))
        self.started.set()
        await self.release.wait()
        return {key: key.upper() for key in keys}


@pytest.mark.parametrize(
    ("cancelled", "batches"),
    [
        # The first request reads for the batch: cancelled, it hands the others on to a new read.
        (0, [["a", "b"], ["b"]]),
        (1, [["a", "b"]]),
    ],
)
async def test_a_request_cancelled_while_its_batch_reads_leaves_the_other_answered(
    cancelled: int, batches: list[list[str]]
) -> None:
    fetch = SlowFetch()
    reads = ReadCoalescer(fetch)
    requests = [asyncio.ensure_future(reads.get(key)) for key in ("a", "b")]
    await fetch.started.wait()
    requests[cancelled].cancel()
    fetch.release.set()
    assert await requests[1 - cancelled] == "AB"[1 - cancelled]
    with pytest.raises(asyncio.CancelledError):
        await requests[cancelled]
    assert fetch.batches == batches


async def test_a_first_request_cancelled_before_reading_hands_the_batch_on() -> None:
    fetch = RecordingFetch()
    reads = ReadCoalescer(fetch)

    async def cancel_first() -> None:  # runs in the same pass, before the first resumes
        first.cancel()

    first = asyncio.ensure_future(reads.get("a"))
    second = asyncio.ensure_future(reads.get("b"))
    await asyncio.gather(cancel_first(), second)
    assert second.result() == "b@1"
    assert first.cancelled()
    assert fetch.batches == [["b"]]


async def test_a_key_the_fetch_left_out_fails_its_request_alone() -> None:
    async def partial(keys: Sequence[str]) -> Mapping[str, str]:
        return {key: key for key in keys if key != "b"}

    reads = ReadCoalescer(partial)
    outcomes = await asyncio.gather(
        reads.get("a"), reads.get("b"), reads.get("c"), return_exceptions=True
    )
    assert outcomes[0] == "a"
    assert outcomes[2] == "c"
    assert isinstance(outcomes[1], LookupError)
    assert "'b'" in str(outcomes[1])


async def _waited_a_pass(reads: ReadCoalescer[str, str], key: str) -> bool:
    """Whether ``get`` let the event loop run a pass before answering."""
    passes: list[int] = []
    asyncio.get_running_loop().call_soon(passes.append, 1)
    await reads.get(key)
    return bool(passes)


async def test_lone_requests_stop_waiting_for_company_but_probe_for_it() -> None:
    reads = ReadCoalescer(RecordingFetch())
    waited = [await _waited_a_pass(reads, f"u{n}") for n in range(3 * PROBE_EVERY)]
    assert waited[:LONE_READS_BEFORE_SKIPPING] == [True] * LONE_READS_BEFORE_SKIPPING
    probes = [n for n in range(LONE_READS_BEFORE_SKIPPING, len(waited)) if waited[n]]
    assert probes == [PROBE_EVERY, 2 * PROBE_EVERY]


async def test_company_found_by_a_probe_restores_the_shared_reads() -> None:
    fetch = RecordingFetch()
    reads = ReadCoalescer(fetch)
    for n in range(LONE_READS_BEFORE_SKIPPING):  # a quiet spell: reads stop waiting
        await reads.get(f"quiet{n}")
    fetch.batches.clear()
    for n in range(PROBE_EVERY + 4):  # then two requests per pass
        await asyncio.gather(reads.get(f"a{n}"), reads.get(f"b{n}"))
    shared = [len(batch) == 2 for batch in fetch.batches]
    first = shared.index(True)  # a probe finds the second request of its pass...
    assert first <= PROBE_EVERY
    assert all(shared[first:])  # ... and from then on every pass shares its read
