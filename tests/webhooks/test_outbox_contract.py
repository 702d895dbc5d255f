"""One contract, both outbox backends: the same tests on SQLite and on real Redis."""

from __future__ import annotations

import asyncio

from app.webhooks.outbox import Outbox
from app.webhooks.types import Delivery
from tests.webhooks.conftest import OpenOutbox, make_delivery


def ids(deliveries: list[Delivery]) -> list[str]:
    return [delivery.delivery_id for delivery in deliveries]


async def test_enqueue_claim_complete_round_trip_keeps_content(outbox: Outbox) -> None:
    sent = [
        make_delivery("d1", user_key="k1"),
        make_delivery("d2", endpoint="other", kind="profile.segment_changed"),  # about nobody
    ]
    assert await outbox.enqueue(sent) == 2

    claimed = await outbox.claim("w1", limit=10, lease_seconds=30)
    assert sorted(claimed, key=lambda d: d.delivery_id) == sent
    for delivery in claimed:
        await outbox.complete(delivery.delivery_id)
    assert await outbox.claim("w1", limit=10, lease_seconds=30) == []
    assert (await outbox.stats()).depth == 0


async def test_enqueue_is_idempotent_by_delivery_id(outbox: Outbox) -> None:
    assert await outbox.enqueue([make_delivery("d1"), make_delivery("d2")]) == 2
    assert await outbox.enqueue([make_delivery("d2"), make_delivery("d3")]) == 1
    assert sorted(ids(await outbox.claim("w", limit=10, lease_seconds=30))) == ["d1", "d2", "d3"]


async def test_a_claimed_delivery_is_leased_to_one_worker(open_outbox: OpenOutbox) -> None:
    first, second = await open_outbox(), await open_outbox()
    await first.enqueue([make_delivery(f"d{n}") for n in range(6)])

    a = await first.claim("w1", limit=4, lease_seconds=30)
    b = await second.claim("w2", limit=4, lease_seconds=30)
    assert len(a) == 4
    assert len(b) == 2
    assert set(ids(a)).isdisjoint(ids(b))
    assert await first.claim("w3", limit=10, lease_seconds=30) == []


async def test_concurrent_claims_never_share_a_delivery(open_outbox: OpenOutbox) -> None:
    outboxes = [await open_outbox() for _ in range(4)]
    await outboxes[0].enqueue([make_delivery(f"d{n}") for n in range(40)])

    async def drain(outbox: Outbox, worker: str) -> list[str]:
        got: list[str] = []
        while batch := await outbox.claim(worker, limit=3, lease_seconds=30):
            got += ids(batch)
        return got

    results = await asyncio.gather(*(drain(o, f"w{n}") for n, o in enumerate(outboxes)))
    everything = [delivery_id for got in results for delivery_id in got]
    assert sorted(everything) == sorted(f"d{n}" for n in range(40))  # each exactly once


async def test_an_expired_lease_is_claimed_again(outbox: Outbox) -> None:
    await outbox.enqueue([make_delivery("d1")])
    assert ids(await outbox.claim("dead-worker", limit=1, lease_seconds=0.2)) == ["d1"]
    assert await outbox.claim("w2", limit=1, lease_seconds=30) == []
    await asyncio.sleep(0.3)
    assert ids(await outbox.claim("w2", limit=1, lease_seconds=30)) == ["d1"]
    # The first worker lost its lease: its late failure report changes nothing.
    assert not await outbox.retry("d1", "dead-worker", delay_seconds=0, error="late")
    assert not await outbox.dead_letter("d1", "dead-worker", error="late")


async def test_retry_counts_the_attempt_and_waits_the_delay(outbox: Outbox) -> None:
    await outbox.enqueue([make_delivery("d1")])
    await outbox.claim("w", limit=1, lease_seconds=30)
    assert await outbox.retry("d1", "w", delay_seconds=0.3, error="HTTP 500")

    assert await outbox.claim("w", limit=1, lease_seconds=30) == []
    await asyncio.sleep(0.4)
    [again] = await outbox.claim("w", limit=1, lease_seconds=30)
    assert again.attempts == 1
    assert again.last_error == "HTTP 500"


async def test_dead_letter_then_replay(outbox: Outbox) -> None:
    await outbox.enqueue([make_delivery("d1"), make_delivery("d2")])
    for delivery in await outbox.claim("w", limit=2, lease_seconds=30):
        assert await outbox.dead_letter(delivery.delivery_id, "w", error="ConnectError: refused")

    dead = await outbox.dead_letters()
    assert sorted(ids([letter.delivery for letter in dead])) == ["d1", "d2"]
    assert all(letter.delivery.attempts == 1 for letter in dead)
    assert all(letter.delivery.last_error == "ConnectError: refused" for letter in dead)
    assert await outbox.claim("w", limit=10, lease_seconds=30) == []
    stats = await outbox.stats()
    assert (stats.depth, stats.dead_letters) == (0, 2)
    # A dead letter's id is taken: enqueueing it again does not bypass the replay decision.
    assert await outbox.enqueue([make_delivery("d1")]) == 0

    assert await outbox.replay(["d2", "unknown"]) == 1
    [replayed] = await outbox.claim("w", limit=10, lease_seconds=30)
    assert replayed.delivery_id == "d2"
    assert replayed.attempts == 0
    assert replayed.body == make_delivery("d2").body
    assert await outbox.replay() == 1  # every remaining one
    assert ids(await outbox.claim("w", limit=10, lease_seconds=30)) == ["d1"]
    assert await outbox.dead_letters() == []


async def test_stats_report_depth_and_oldest_age(outbox: Outbox) -> None:
    assert (await outbox.stats()).depth == 0
    assert (await outbox.stats()).oldest_age_seconds == 0.0
    await outbox.enqueue([make_delivery("d1")])
    await asyncio.sleep(0.2)
    await outbox.enqueue([make_delivery("d2")])
    stats = await outbox.stats()
    assert stats.depth == 2
    assert 0.15 < stats.oldest_age_seconds < 5


async def test_complete_of_an_unknown_id_is_a_no_op(outbox: Outbox) -> None:
    await outbox.enqueue([make_delivery("d1")])
    await outbox.complete("nope")
    assert (await outbox.stats()).depth == 1


async def test_delete_user_removes_their_waiting_and_dead_deliveries(
    open_outbox: OpenOutbox,
) -> None:
    outbox, admin = await open_outbox(), await open_outbox()  # a worker and the erasing process
    await outbox.enqueue(
        [
            make_delivery("waiting", user_key="alice"),
            make_delivery("in-flight", user_key="alice"),
            make_delivery("dead", user_key="alice"),
            make_delivery("other", user_key="bob"),
            make_delivery("nobody's"),
        ]
    )
    await outbox.claim("w", limit=10, lease_seconds=30)
    assert await outbox.dead_letter("dead", "w", error="HTTP 500")
    for delivery_id in ("waiting", "other", "nobody's"):
        assert await outbox.retry(delivery_id, "w", delay_seconds=0, error="HTTP 503")

    assert await admin.delete_user("alice") == 3

    assert await outbox.dead_letters() == []
    assert sorted(ids(await outbox.claim("w", limit=10, lease_seconds=30))) == ["nobody's", "other"]
    # The worker sending "in-flight" lost it: its report changes nothing.
    assert not await outbox.retry("in-flight", "w", delay_seconds=0, error="late")
    assert not await outbox.dead_letter("in-flight", "w", error="late")
    stats = await outbox.stats()
    assert (stats.depth, stats.dead_letters) == (2, 0)
    assert await outbox.replay() == 0
    assert await admin.delete_user("alice") == 0  # idempotent
