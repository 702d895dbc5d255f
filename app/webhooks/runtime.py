"""The webhook pieces one server process holds, built in the app's lifespan."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from app.privacy.pseudonym import Pseudonymizer
from app.settings import Settings
from app.webhooks.config import load_endpoints
from app.webhooks.outbox import Outbox, open_outbox
from app.webhooks.publisher import WebhookPublisher
from app.webhooks.worker import DeliveryWorker

log = logging.getLogger(__name__)


@dataclass
class Webhooks:
    """The outbox, the publisher the request path enqueues through, and the delivery worker
    with its HTTP client (None when no endpoint is configured: nothing is enqueued then)."""

    outbox: Outbox
    publisher: WebhookPublisher
    worker: DeliveryWorker | None = None
    client: httpx.AsyncClient | None = None

    async def close(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
        if self.client is not None:
            await self.client.aclose()
        await self.outbox.close()


def start_webhooks(settings: Settings, pseudonyms: Pseudonymizer) -> Webhooks:
    """Validate the endpoints (``WebhookConfigError`` refuses start-up), open the outbox and,
    with endpoints, start the delivery worker. Deliveries are stamped with ``pseudonyms`` of
    their users (for erasure). Call from the running event loop."""
    endpoints = load_endpoints(settings.webhooks)
    outbox = open_outbox(settings)
    publisher = WebhookPublisher(outbox, endpoints, pseudonyms)
    if not endpoints:
        return Webhooks(outbox, publisher)
    # Built once; each attempt passes its endpoint's timeout. No redirects: a signed
    # delivery goes to the configured URL or fails.
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(max(e.timeout_seconds for e in endpoints)),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=settings.webhooks.batch_size),
    )
    worker = DeliveryWorker(outbox, endpoints, client, settings.webhooks)
    worker.start()
    log.info("webhooks: %s", ", ".join(f"{e.name} ({', '.join(e.events)})" for e in endpoints))
    return Webhooks(outbox, publisher, worker, client)
