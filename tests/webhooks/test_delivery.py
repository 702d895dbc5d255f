"""The delivery worker against a real local HTTP receiver, on both outbox backends: signed
bodies, a receiver that is down then recovers, dead letters and replay, two workers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY

from app.settings import WebhookEndpointSpec, WebhookSettings
from app.webhooks.outbox import Outbox
from app.webhooks.publisher import WebhookPublisher
from app.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from app.webhooks.worker import DeliveryWorker, backoff_seconds
from tests.webhooks.conftest import PSEUDONYMS, OpenOutbox, make_delivery, wait_until
from tests.webhooks.receiver import Receiver

SECRET = "s3cret-s3cret-s3cret"
FAST = WebhookSettings(
    max_attempts=50,
    backoff_initial_seconds=0.05,
    backoff_max_seconds=0.2,
    lease_seconds=10,
    poll_interval_seconds=0.02,
    batch_size=10,
)

MakeWorker = Callable[..., DeliveryWorker]


def endpoint_for(
    receiver: Receiver, name: str = "crm", timeout: float = 2.0
) -> WebhookEndpointSpec:
    return WebhookEndpointSpec.model_validate(
        {
            "name": name,
            "url": receiver.url,
            "secret": SECRET,
            "events": ["engagement.click", "profile.segment_changed"],
            "timeout_seconds": timeout,
        }
    )


@pytest.fixture
async def make_worker() -> AsyncIterator[MakeWorker]:
    """Started workers with their own HTTP client; stopped and closed after the test."""
    started: list[tuple[DeliveryWorker, httpx.AsyncClient]] = []

    def make(
        outbox: Outbox, endpoint: WebhookEndpointSpec, config: WebhookSettings = FAST
    ) -> DeliveryWorker:
        client = httpx.AsyncClient()
        worker = DeliveryWorker(outbox, [endpoint], client, config, rng=random.Random(7))
        worker.start()
        started.append((worker, client))
        return worker

    yield make
    for worker, client in started:
        await worker.stop()
        await client.aclose()


def delivered_ids(receiver: Receiver) -> Counter[str]:
    return Counter(r.headers[DELIVERY_HEADER] for r in receiver.accepted())


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_deliveries_are_signed_and_verify(
    outbox: Outbox, receiver: Receiver, make_worker: MakeWorker
) -> None:
    receiver.start()
    endpoint = endpoint_for(receiver)
    publisher = WebhookPublisher(outbox, [endpoint], PSEUDONYMS)
    assert await publisher.notify_segment_change("u1", "bargain-hunters", "loyal") == 1
    make_worker(outbox, endpoint)

    await wait_until(lambda: len(receiver.accepted()) == 1)
    [request] = receiver.accepted()
    payload = orjson.loads(request.body)
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers[EVENT_HEADER] == "profile.segment_changed"
    assert request.headers[DELIVERY_HEADER] == payload["id"]
    assert payload["type"] == "profile.segment_changed"
    assert payload["data"]["user_id"] == "u1"
    assert (payload["data"]["old_segment"], payload["data"]["new_segment"]) == (
        "bargain-hunters",
        "loyal",
    )
    # The documented scheme, computed independently of app.webhooks.signing:
    signed = request.headers[TIMESTAMP_HEADER].encode() + b"." + request.body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER] == f"v1={expected}"
    assert verify(SECRET, request.headers, request.body)
    assert not verify("another-secret-of-16", request.headers, request.body)
    assert not verify(SECRET, request.headers, request.body.replace(b"loyal", b"lapsed"))
    # A captured request replayed later than the tolerance no longer verifies.
    sent_at = int(request.headers[TIMESTAMP_HEADER])
    assert not verify(SECRET, request.headers, request.body, now=sent_at + 301)


async def test_receiver_down_then_failing_then_recovered_loses_nothing(
    outbox: Outbox, receiver: Receiver, make_worker: MakeWorker
) -> None:
    endpoint = endpoint_for(receiver)
    await outbox.enqueue([make_delivery(f"d{n}") for n in range(20)])
    retries_before = sample("recserve_webhook_retries_total", endpoint="crm")
    make_worker(outbox, endpoint)

    # Down: nothing listens on the port, every attempt is refused.
    await wait_until(
        lambda: sample("recserve_webhook_retries_total", endpoint="crm") > retries_before + 20
    )
    # Up but failing: the first 15 requests get a 500 or 503, then it recovers.
    receiver.status_for = lambda number: 500 if number <= 10 else 503 if number <= 15 else 200
    receiver.start()

    await wait_until(lambda: len(delivered_ids(receiver)) == 20)
    await asyncio.sleep(0.3)  # time for any stray duplicate to show up
    assert delivered_ids(receiver) == Counter({f"d{n}": 1 for n in range(20)})
    assert all(verify(SECRET, r.headers, r.body) for r in receiver.attempts())
    stats = await outbox.stats()
    assert (stats.depth, stats.dead_letters) == (0, 0)


async def test_max_attempts_dead_letters_then_replay_delivers(
    outbox: Outbox, receiver: Receiver, make_worker: MakeWorker
) -> None:
    receiver.status_for = lambda _number: 500
    receiver.start()
    endpoint = endpoint_for(receiver)
    await outbox.enqueue([make_delivery("d1"), make_delivery("d2")])
    dead_before = sample("recserve_webhook_dead_letters_total", endpoint="crm")
    make_worker(outbox, endpoint, FAST.model_copy(update={"max_attempts": 3}))

    await wait_until(
        lambda: sample("recserve_webhook_dead_letters_total", endpoint="crm") == dead_before + 2
    )
    dead = await outbox.dead_letters()
    assert sorted(letter.delivery.delivery_id for letter in dead) == ["d1", "d2"]
    assert all(
        letter.delivery.attempts == 3 and letter.delivery.last_error == "HTTP 500"
        for letter in dead
    )
    per_delivery = Counter(r.headers[DELIVERY_HEADER] for r in receiver.attempts())
    assert per_delivery == Counter({"d1": 3, "d2": 3})
    attempts_d1 = [
        r.headers["X-Recserve-Attempt"]
        for r in receiver.attempts()
        if r.headers[DELIVERY_HEADER] == "d1"
    ]
    assert attempts_d1 == ["1", "2", "3"]

    receiver.status_for = lambda _number: 200
    assert await outbox.replay() == 2
    await wait_until(lambda: len(delivered_ids(receiver)) == 2)
    assert await outbox.dead_letters() == []


async def test_two_workers_deliver_each_message_once(
    open_outbox: OpenOutbox, receiver: Receiver, make_worker: MakeWorker
) -> None:
    receiver.start()
    endpoint = endpoint_for(receiver)
    first, second = await open_outbox(), await open_outbox()
    make_worker(first, endpoint, FAST.model_copy(update={"batch_size": 3}))
    make_worker(second, endpoint, FAST.model_copy(update={"batch_size": 3}))
    await first.enqueue([make_delivery(f"d{n}") for n in range(40)])

    await wait_until(lambda: len(delivered_ids(receiver)) == 40)
    await asyncio.sleep(0.3)
    assert len(receiver.attempts()) == 40  # no delivery was sent by both workers


async def test_a_hanging_receiver_times_out_and_is_retried(
    outbox: Outbox, receiver: Receiver, make_worker: MakeWorker
) -> None:
    receiver.delay_seconds = 1.5
    receiver.start()
    await outbox.enqueue([make_delivery("d1")])
    timeouts_before = sample(
        "recserve_webhook_attempts_total", endpoint="crm", outcome="transport_error"
    )
    make_worker(outbox, endpoint_for(receiver, timeout=0.3))

    await wait_until(
        lambda: (
            sample("recserve_webhook_attempts_total", endpoint="crm", outcome="transport_error")
            > timeouts_before
        )
    )
    receiver.delay_seconds = 0.0

    def retried() -> list[str]:
        return [
            r.headers["X-Recserve-Attempt"]
            for r in receiver.accepted()
            if r.headers["X-Recserve-Attempt"] != "1"
        ]

    await wait_until(lambda: bool(retried()))
    # The timed-out attempt may still have reached the receiver: same delivery id, so the
    # receiver can tell it is the same message (at-least-once with an idempotency key).
    assert {r.headers[DELIVERY_HEADER] for r in receiver.attempts()} == {"d1"}


async def test_a_delivery_for_an_endpoint_no_longer_configured_is_dead_lettered(
    outbox: Outbox, receiver: Receiver, make_worker: MakeWorker
) -> None:
    receiver.start()
    await outbox.enqueue([make_delivery("d1", endpoint="removed")])
    dead_before = sample("recserve_webhook_dead_letters_total", endpoint="removed")
    make_worker(outbox, endpoint_for(receiver))

    await wait_until(
        lambda: sample("recserve_webhook_dead_letters_total", endpoint="removed") > dead_before
    )
    [letter] = await outbox.dead_letters()
    assert letter.delivery.last_error == "endpoint no longer configured"
    assert receiver.attempts() == []


def test_backoff_doubles_with_jitter_up_to_the_ceiling() -> None:
    config = WebhookSettings(backoff_initial_seconds=1.0, backoff_max_seconds=10.0)
    rng = random.Random(1)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (30, 10.0)]:
        delays = [backoff_seconds(failures, config, rng) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not constant
