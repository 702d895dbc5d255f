"""What the rest of the service calls: turn engagement events and segment changes into JSON
deliveries, one per subscribed endpoint, written to the outbox (signed when sent).

Only personalised engagement is sent: a click, add-to-cart or purchase that carries a
``recommendation_id`` in its ``context`` (as experiment attribution reads it). Delivery
ids derive from the source (event id or change id) and the endpoint, so enqueueing the same
source twice stores it once. Every delivery is stamped with the keyed pseudonym of the user
its body names, so ``DELETE /users/{id}`` finds it without reading bodies.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from app.events.types import Event
from app.observability import metrics
from app.privacy.pseudonym import Pseudonymizer
from app.settings import Settings, WebhookEndpointSpec, WebhookEventKind
from app.webhooks.config import load_endpoints
from app.webhooks.outbox import Outbox, run_with_outbox
from app.webhooks.types import Delivery, OutboxUnavailable

log = logging.getLogger(__name__)

_ENGAGEMENT_KINDS: dict[str, WebhookEventKind] = {
    "click": "engagement.click",
    "add_to_cart": "engagement.add_to_cart",
    "purchase": "engagement.purchase",
}
SEGMENT_CHANGED: WebhookEventKind = "profile.segment_changed"
_NAMESPACE = uuid.UUID("6f1c3a52-8f0e-4a59-9a43-5f7f2d0c9b11")


@dataclass(frozen=True, slots=True)
class SegmentChange:
    """A user moved from ``old`` (None: had no segment) to ``new`` segment."""

    user_id: str
    old: str | None
    new: str


class WebhookPublisher:
    """Builds deliveries for the configured endpoints and enqueues them."""

    def __init__(
        self,
        outbox: Outbox,
        endpoints: Sequence[WebhookEndpointSpec],
        pseudonyms: Pseudonymizer,
    ) -> None:
        self._outbox = outbox
        self._pseudonyms = pseudonyms
        self._subscribers: dict[str, list[str]] = {}
        for endpoint in endpoints:
            for kind in endpoint.events:
                self._subscribers.setdefault(kind, []).append(endpoint.name)

    async def publish_events(self, events: Sequence[Event]) -> None:
        """Enqueue the personalised engagement among ``events`` (an ``EventListener``: never
        raises; a failed enqueue is logged and counted, the events stay in the event log)."""
        deliveries = [
            delivery
            for event in events
            if (payload := _engagement(event)) is not None
            for delivery in self._deliveries(
                _ENGAGEMENT_KINDS[event.type], event.event_id, event.user_id, payload
            )
        ]
        try:
            await self._enqueue(deliveries)
        except OutboxUnavailable as exc:
            metrics.WEBHOOK_ENQUEUE_FAILURES.inc()
            log.error("webhook deliveries for %d events not enqueued: %s", len(events), exc)

    async def notify_segment_change(self, user_id: str, old: str | None, new: str) -> int:
        """Enqueue one ``profile.segment_changed`` per subscribed endpoint; returns how many.
        Raises ``OutboxUnavailable`` when nothing was stored."""
        return await self.notify_segment_changes([SegmentChange(user_id, old, new)])

    async def notify_segment_changes(self, changes: Iterable[SegmentChange]) -> int:
        """Batch form of ``notify_segment_change`` (one outbox write); unchanged segments are
        skipped."""
        now = time.time()
        deliveries = [
            delivery
            for change in changes
            if change.old != change.new
            for delivery in self._deliveries(
                SEGMENT_CHANGED,
                uuid.uuid4().hex,
                change.user_id,
                {
                    "user_id": change.user_id,
                    "old_segment": change.old,
                    "new_segment": change.new,
                    "changed_at": now,
                },
            )
        ]
        await self._enqueue(deliveries)
        return len(deliveries)

    async def notify_model_change(
        self, kind: WebhookEventKind, source_id: str, data: dict[str, Any]
    ) -> int:
        """Enqueue one ``model.*`` delivery (about no user) per subscribed endpoint; returns
        how many. ``source_id`` names the change: enqueueing it again stores nothing new.
        Raises ``OutboxUnavailable`` when nothing was stored."""
        deliveries = self._deliveries(kind, source_id, None, data)
        await self._enqueue(deliveries)
        return len(deliveries)

    def _deliveries(
        self, kind: str, source_id: str, user_id: str | None, data: dict[str, Any]
    ) -> list[Delivery]:
        created_at = time.time()
        user_key = None if user_id is None else self._pseudonyms.of(user_id)
        deliveries = []
        for endpoint in self._subscribers.get(kind, ()):
            delivery_id = str(uuid.uuid5(_NAMESPACE, f"{endpoint}\x1f{kind}\x1f{source_id}"))
            body = orjson.dumps(
                {"id": delivery_id, "type": kind, "created_at": created_at, "data": data}
            )
            deliveries.append(
                Delivery(delivery_id, endpoint, kind, body, created_at, user_key=user_key)
            )
        return deliveries

    async def _enqueue(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        await self._outbox.enqueue(deliveries)
        for delivery in deliveries:
            metrics.WEBHOOK_ENQUEUED.labels(delivery.endpoint, delivery.kind).inc()


def publish_segment_changes(settings: Settings, changes: Iterable[SegmentChange]) -> int:
    """For a batch job outside the server (``recserve segment``): enqueue the changes in the
    configured outbox, which the running servers' delivery workers send. Returns how many
    deliveries were enqueued; raises ``WebhookConfigError`` or ``OutboxUnavailable``."""
    endpoints = load_endpoints(settings.webhooks)
    if not endpoints:
        return 0
    pseudonyms = Pseudonymizer.from_settings(settings)
    return run_with_outbox(
        settings,
        lambda outbox: WebhookPublisher(outbox, endpoints, pseudonyms).notify_segment_changes(
            changes
        ),
    )


def _engagement(event: Event) -> dict[str, Any] | None:
    """The payload of a personalised engagement event, or None when it is not one."""
    if event.type not in _ENGAGEMENT_KINDS:
        return None
    recommendation_id = (event.context or {}).get("recommendation_id")
    if not isinstance(recommendation_id, str):
        return None
    data: dict[str, Any] = {
        "event_id": event.event_id,
        "user_id": event.user_id,
        "item_id": event.item_id,
        "event_type": event.type,
        "timestamp": event.timestamp,
        "recommendation_id": recommendation_id,
    }
    if event.value is not None:
        data["value"] = event.value
    return data
