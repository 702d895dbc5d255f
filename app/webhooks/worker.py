"""The background delivery worker: claim due deliveries, POST them signed, settle each.

One runs in every uvicorn worker (an asyncio task of the app's lifespan); the outbox's lease
makes each claimed delivery one worker's alone. A failure (non-2xx, refused, timeout) schedules
a retry after an exponential backoff with jitter; the ``max_attempts``-th failure parks the
delivery in the dead-letter store. A delivery is removed only after a 2xx answer, so a crash
anywhere means a resend (same delivery id), never a loss.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Sequence

import httpx

from app.observability import metrics
from app.settings import WebhookEndpointSpec, WebhookSettings
from app.webhooks.outbox import Outbox
from app.webhooks.signing import DELIVERY_HEADER, EVENT_HEADER, signed_headers
from app.webhooks.types import Delivery, OutboxUnavailable

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "X-Recserve-Attempt"


def backoff_seconds(failures: int, config: WebhookSettings, rng: random.Random) -> float:
    """Delay after the ``failures``-th failure: ``initial * 2**(failures-1)`` capped at the
    maximum, then drawn from its upper half ("equal jitter") so workers that failed together
    do not retry together."""
    ceiling = min(config.backoff_max_seconds, config.backoff_initial_seconds * 2 ** (failures - 1))
    return rng.uniform(ceiling / 2, ceiling)


class DeliveryWorker:
    """Sends the outbox's deliveries with one shared ``httpx.AsyncClient``."""

    def __init__(
        self,
        outbox: Outbox,
        endpoints: Sequence[WebhookEndpointSpec],
        client: httpx.AsyncClient,
        config: WebhookSettings,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._outbox = outbox
        self._endpoints = {endpoint.name: endpoint for endpoint in endpoints}
        self._client = client
        self._config = config
        self._rng = rng or random.Random()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the delivery loop as a task of the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-delivery")

    async def stop(self) -> None:
        """Stop the loop; attempts in flight are cancelled, and their leases expire so another
        worker (or this one after a restart) sends them again. The flag as well as the
        cancel: a client library that turns a cancellation into its own error (which the loop
        survives) must not keep the loop running."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run_once(self) -> int:
        """Claim one batch and settle every delivery in it; returns how many were claimed."""
        batch = await self._outbox.claim(
            self.worker_id, limit=self._config.batch_size, lease_seconds=self._config.lease_seconds
        )
        await asyncio.gather(*(self._deliver(delivery) for delivery in batch))
        return len(batch)

    async def _sample_outbox(self) -> None:
        """Refresh the outbox gauges."""
        stats = await self._outbox.stats()
        metrics.WEBHOOK_OUTBOX.labels("depth").set(stats.depth)
        metrics.WEBHOOK_OUTBOX.labels("oldest_age_seconds").set(stats.oldest_age_seconds)
        metrics.WEBHOOK_OUTBOX.labels("dead_letters").set(stats.dead_letters)

    async def _run(self) -> None:
        interval = self._config.poll_interval_seconds
        next_sample = 0.0
        while not self._stopping.is_set():
            try:
                claimed = await self._run_once()
                if time.monotonic() >= next_sample:
                    await self._sample_outbox()
                    next_sample = time.monotonic() + max(interval, 1.0)
            except OutboxUnavailable as exc:
                log.warning("webhook outbox unavailable, retrying in %.1fs: %s", interval, exc)
                claimed = 0
            except Exception:  # the loop must outlive any single bad delivery or bug
                log.exception("webhook delivery loop error")
                claimed = 0
            if claimed < self._config.batch_size:  # a full batch: more may be due at once
                await asyncio.sleep(interval)

    async def _deliver(self, delivery: Delivery) -> None:
        endpoint = self._endpoints.get(delivery.endpoint)
        if endpoint is None:
            await self._fail(delivery, "endpoint no longer configured", final=True)
            return
        error = await self._attempt(endpoint, delivery)
        if error is None:
            await self._outbox.complete(delivery.delivery_id)
            return
        await self._fail(delivery, error, final=delivery.attempts + 1 >= self._config.max_attempts)

    async def _attempt(self, endpoint: WebhookEndpointSpec, delivery: Delivery) -> str | None:
        """POST once; None on a 2xx, else what went wrong (never the secret or headers)."""
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: delivery.delivery_id,
            EVENT_HEADER: delivery.kind,
            ATTEMPT_HEADER: str(delivery.attempts + 1),
            **signed_headers(endpoint.secret.get_secret_value(), delivery.body, int(time.time())),
        }
        try:
            response = await self._client.post(
                str(endpoint.url),
                content=delivery.body,
                headers=headers,
                timeout=endpoint.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            metrics.WEBHOOK_ATTEMPTS.labels(endpoint.name, "transport_error").inc()
            return f"{type(exc).__name__}: {exc}"[:500]
        if response.is_success:
            metrics.WEBHOOK_ATTEMPTS.labels(endpoint.name, "delivered").inc()
            return None
        metrics.WEBHOOK_ATTEMPTS.labels(endpoint.name, "http_error").inc()
        return f"HTTP {response.status_code}"

    async def _fail(self, delivery: Delivery, error: str, *, final: bool) -> None:
        if final:
            if await self._outbox.dead_letter(delivery.delivery_id, self.worker_id, error=error):
                metrics.WEBHOOK_DEAD_LETTERS.labels(delivery.endpoint).inc()
                log.warning(
                    "webhook %s to %s dead-lettered after %d attempts: %s",
                    delivery.delivery_id,
                    delivery.endpoint,
                    delivery.attempts + 1,
                    error,
                )
            return
        delay = backoff_seconds(delivery.attempts + 1, self._config, self._rng)
        if await self._outbox.retry(
            delivery.delivery_id, self.worker_id, delay_seconds=delay, error=error
        ):
            metrics.WEBHOOK_RETRIES.labels(delivery.endpoint).inc()
