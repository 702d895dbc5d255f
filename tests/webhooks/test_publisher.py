"""Which events become deliveries, for which endpoints, with what payload."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from prometheus_client import REGISTRY

from app.events.types import Event, EventType
from app.privacy.pseudonym import Pseudonymizer
from app.settings import Settings, WebhookEndpointSpec, WebhookSettings
from app.webhooks.outbox import Outbox, open_outbox
from app.webhooks.outbox_sqlite import SqliteOutbox
from app.webhooks.publisher import SegmentChange, WebhookPublisher, publish_segment_changes
from app.webhooks.types import Delivery
from tests.events.conftest import make_event
from tests.webhooks.conftest import PSEUDONYMS


def endpoint(name: str, *events: str) -> WebhookEndpointSpec:
    return WebhookEndpointSpec.model_validate(
        {
            "name": name,
            "url": f"http://127.0.0.1:9/{name}",
            "secret": "0123456789abcdef",
            "events": events,
        }
    )


ENDPOINTS = [
    endpoint("clicks-only", "engagement.click"),
    endpoint("crm", "engagement.click", "engagement.purchase", "profile.segment_changed"),
]


async def waiting(outbox: Outbox) -> list[Delivery]:
    return await outbox.claim("test", limit=100, lease_seconds=30)


def engaged(
    event_id: str,
    kind: EventType,
    recommendation_id: str | None = "rec-1",
    value: float | None = None,
) -> Event:
    context: dict[str, object] = {"page": "home"}
    if recommendation_id is not None:
        context["recommendation_id"] = recommendation_id
    return make_event(event_id, "u1", "sku-1", type=kind, value=value, context=context)


async def test_personalised_engagement_goes_to_each_subscribed_endpoint(outbox: Outbox) -> None:
    publisher = WebhookPublisher(outbox, ENDPOINTS, PSEUDONYMS)
    await publisher.publish_events(
        [
            engaged("click", "click"),
            engaged("buy", "purchase", value=19.9),
            engaged("cart", "add_to_cart"),  # nobody subscribes to add_to_cart
            engaged("view", "view"),  # not engagement
            engaged("plain-click", "click", recommendation_id=None),  # not personalised
        ]
    )
    got = await waiting(outbox)
    assert sorted((d.endpoint, d.kind) for d in got) == [
        ("clicks-only", "engagement.click"),
        ("crm", "engagement.click"),
        ("crm", "engagement.purchase"),
    ]
    assert len({d.delivery_id for d in got}) == 3
    assert {d.user_key for d in got} == {PSEUDONYMS.of("u1")}  # for erasure, never the raw id
    [purchase] = [orjson.loads(d.body) for d in got if d.kind == "engagement.purchase"]
    assert purchase["type"] == "engagement.purchase"
    assert purchase["data"] == {
        "event_id": "buy",
        "user_id": "u1",
        "item_id": "sku-1",
        "event_type": "purchase",
        "timestamp": purchase["data"]["timestamp"],
        "recommendation_id": "rec-1",
        "value": 19.9,
    }


async def test_the_same_event_twice_is_one_delivery_per_endpoint(outbox: Outbox) -> None:
    publisher = WebhookPublisher(outbox, ENDPOINTS, PSEUDONYMS)
    await publisher.publish_events([engaged("click", "click")])
    await publisher.publish_events([engaged("click", "click")])
    assert len(await waiting(outbox)) == 2


async def test_notify_segment_change_reaches_segment_subscribers_only(outbox: Outbox) -> None:
    publisher = WebhookPublisher(outbox, ENDPOINTS, PSEUDONYMS)
    assert await publisher.notify_segment_change("u7", None, "champions") == 1
    assert await publisher.notify_segment_change("u8", "loyal", "loyal") == 0  # no change
    [delivery] = await waiting(outbox)
    body = orjson.loads(delivery.body)
    assert (delivery.endpoint, delivery.kind) == ("crm", "profile.segment_changed")
    assert delivery.user_key == PSEUDONYMS.of("u7")
    assert body["id"] == delivery.delivery_id
    assert body["data"]["user_id"] == "u7"
    assert (body["data"]["old_segment"], body["data"]["new_segment"]) == (None, "champions")


async def test_a_failed_enqueue_is_counted_and_does_not_raise(tmp_path: Path) -> None:
    failures = REGISTRY.get_sample_value("recserve_webhook_enqueue_failures_total") or 0.0
    unusable = SqliteOutbox(tmp_path)  # a directory where the database file should be
    await WebhookPublisher(unusable, ENDPOINTS, PSEUDONYMS).publish_events(
        [engaged("click", "click")]
    )
    assert REGISTRY.get_sample_value("recserve_webhook_enqueue_failures_total") == failures + 1


def test_publish_segment_changes_from_a_batch_job(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, webhooks=WebhookSettings(endpoints=ENDPOINTS))
    changes = [
        SegmentChange("u1", "a", "b"),
        SegmentChange("u2", None, "a"),
        SegmentChange("u3", "a", "a"),
    ]
    assert publish_segment_changes(settings, changes) == 2
    assert publish_segment_changes(Settings(home=tmp_path), changes) == 0  # no endpoints

    async def user_keys() -> list[str]:
        outbox = open_outbox(settings)
        try:
            return sorted(d.user_key for d in await waiting(outbox) if d.user_key is not None)
        finally:
            await outbox.close()

    pseudonyms = Pseudonymizer.from_settings(settings)
    assert asyncio.run(user_keys()) == sorted([pseudonyms.of("u1"), pseudonyms.of("u2")])
