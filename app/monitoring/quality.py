"""Online quality of every answer: CTR and conversion by model version, source, segment and
device, attributed with the experiments' rules (``app.experiments.attribution``).

Each ``/recommend`` answer becomes an exposure in the same ``ExposureStore`` the experiments
use (so every worker attributes every answer), in its own scope: ``experiment_id``
``QUALITY_SCOPE``, the labels packed in ``variant``, and the recommendation id prefixed so an
answer inside an experiment is stored once per purpose. The request path only queues the
exposure (``offer``, O(1)); ``run`` writes the queue in the background, and a full queue drops
the answer from the counts (``recserve_quality_dropped_total``) instead of slowing requests.
A feedback event that reaches the store before its exposure is not counted, as with an
expired one. Only a share of the answers is recorded (``sample_share``, drawn by a hash of
the recommendation id, so the feedback on an answer is counted exactly when the answer was):
a store write per answer cost a fifth of the serving throughput, and CTR and conversion,
being ratios, need no more than a sample; the counters then count the sample. These exposures
hold no user key: they are anonymous (the counts need none), so they are neither exported nor
erased with a user's data, and the store's distinct-user count means nothing for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.events.types import Event
from app.experiments.assignment import Assignment
from app.experiments.attribution import (
    COUNTER_OF_EVENT,
    DEFAULT_CLOCK_SKEW,
    Attributed,
    Attributor,
    Counter,
    ExposureStore,
    ExposureStoreUnavailable,
    VariantCounts,
)
from app.experiments.config import ModelStrategy
from app.monitoring.feedback import feedback_of
from app.observability import metrics

log = logging.getLogger(__name__)

QUALITY_SCOPE = "_quality"  # the exposures' experiment id: no configured experiment has it
RECOMMENDATION_KEY_PREFIX = "q:"
DEVICES = frozenset({"desktop", "mobile", "tablet", "app", "tv"})  # any other: "other"
QUEUE_SIZE = 10_000
ANONYMOUS = ""  # the exposures' user key
_SEPARATOR = "|"
_COUNTER_METRICS = {
    Counter.IMPRESSIONS: metrics.QUALITY_IMPRESSIONS,
    Counter.CLICKS: metrics.QUALITY_CLICKS,
    Counter.CONVERSIONS: metrics.QUALITY_CONVERSIONS,
}
_STRATEGY = ModelStrategy(kind="model")  # what made the answers; attribution ignores it


@dataclass(frozen=True, slots=True)
class AnswerLabels:
    model_version: str
    source: str
    segment: str
    device: str

    @classmethod
    def of(
        cls, model_version: str, source: str, segment: str | None, device: str | None
    ) -> AnswerLabels:
        """Bounded labels: a missing segment or device reads ``none``, an unlisted device
        ``other``."""
        device_class = "none" if device is None else device if device in DEVICES else "other"
        return cls(model_version, source, segment or "none", device_class)

    def packed(self) -> str:
        return _SEPARATOR.join((self.model_version, self.source, self.segment, self.device))

    @classmethod
    def unpacked(cls, packed: str) -> AnswerLabels:
        version, source, segment, device = packed.rsplit(_SEPARATOR, 3)
        return cls(version, source, segment, device)


@dataclass(frozen=True, slots=True)
class _Pending:
    recommendation_id: str
    labels: AnswerLabels
    item_ids: tuple[str, ...]
    served_at: datetime


class QualityTracker:
    """Queues every answer's exposure, writes them in the background, attributes feedback."""

    def __init__(
        self,
        store: ExposureStore,
        window: timedelta,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        queue_size: int = QUEUE_SIZE,
        sample_share: float = 1.0,
    ) -> None:
        self._store = store
        self._sample_below = int(sample_share * 2**32)
        self._attributor = Attributor(store, window, clock_skew)
        self._clock = clock
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(queue_size)

    def offer(self, recommendation_id: str, labels: AnswerLabels, item_ids: Sequence[str]) -> None:
        """Queue the answer's exposure if it is in the sample; drops it (counted) when the
        writer is behind."""
        if not self.sampled(recommendation_id):
            return
        pending = _Pending(recommendation_id, labels, tuple(item_ids), self._clock())
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            metrics.QUALITY_DROPPED.labels("queue_full").inc()

    def sampled(self, recommendation_id: str) -> bool:
        """Whether the answer is in the recorded sample (the same answer on every worker)."""
        return zlib.crc32(recommendation_id.encode()) < self._sample_below

    async def run(self) -> None:
        """Write queued exposures until cancelled."""
        while True:
            await self._write(await self._queue.get())

    async def flush(self) -> None:
        """Write what is queued now (the lifespan's shutdown, tests)."""
        while not self._queue.empty():
            await self._write(self._queue.get_nowait())

    async def _write(self, pending: _Pending) -> None:
        assignment = Assignment(QUALITY_SCOPE, pending.labels.packed(), _STRATEGY)
        try:
            await self._attributor.record_exposure(
                RECOMMENDATION_KEY_PREFIX + pending.recommendation_id,
                assignment,
                ANONYMOUS,
                pending.item_ids,
                pending.served_at,
            )
        except ExposureStoreUnavailable as exc:
            metrics.QUALITY_DROPPED.labels("store_unavailable").inc()
            log.warning("answer not recorded for online quality: %s", exc)
            return
        metrics.QUALITY_EXPOSURES.labels(*_label_values(pending.labels)).inc()

    async def attribute(self, events: Sequence[Event]) -> None:
        """Count the feedback events carrying ``context.recommendation_id`` (an
        ``EventIngestor`` listener)."""
        for event in events:
            feedback = feedback_of(event, RECOMMENDATION_KEY_PREFIX)
            if feedback is None or not self.sampled(
                feedback.recommendation_id.removeprefix(RECOMMENDATION_KEY_PREFIX)
            ):
                continue
            try:
                attributed = await self._attributor.attribute(feedback)
            except ExposureStoreUnavailable as exc:
                metrics.QUALITY_DROPPED.labels("store_unavailable").inc()
                log.warning("event %s not counted for online quality: %s", event.event_id, exc)
                continue
            if isinstance(attributed, Attributed) and attributed.counted:
                counter = _COUNTER_METRICS[COUNTER_OF_EVENT[feedback.event_type]]
                labels = AnswerLabels.unpacked(attributed.variant)
                counter.labels(*_label_values(labels)).inc()

    async def close(self) -> None:
        """Write what is still queued (as far as the store answers), then close the store."""
        with contextlib.suppress(ExposureStoreUnavailable):
            await self.flush()
        await self._store.close()

    async def totals(self) -> dict[AnswerLabels, VariantCounts]:
        """The store's counters per label set, across workers. Raises
        ``ExposureStoreUnavailable``."""
        counts = await self._store.variant_counts(QUALITY_SCOPE)
        return {AnswerLabels.unpacked(packed): found for packed, found in counts.items()}


def _label_values(labels: AnswerLabels) -> tuple[str, str, str, str]:
    return (labels.model_version, labels.source, labels.segment, labels.device)
