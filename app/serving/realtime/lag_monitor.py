"""Samples the event log's offline-consumer lag into a gauge, in the API's background."""

from __future__ import annotations

import asyncio
import logging

from app.events.log import EventLog
from app.events.sink import OFFLINE_GROUP
from app.events.types import EventLogUnavailable
from app.observability import metrics

log = logging.getLogger(__name__)


async def sample_event_log_lag(event_log: EventLog) -> int | None:
    """Publish the offline group's lag once; None (and the gauge left as it was) on failure."""
    try:
        lag = await event_log.lag(OFFLINE_GROUP)
    except EventLogUnavailable as exc:
        log.warning("event log lag unavailable: %s", exc)
        return None
    metrics.EVENT_LOG_LAG.labels(OFFLINE_GROUP).set(lag)
    return lag


async def watch_event_log_lag(event_log: EventLog, interval_seconds: float) -> None:
    """Sample forever, every ``interval_seconds``; cancel the task to stop."""
    while True:
        await sample_event_log_lag(event_log)
        await asyncio.sleep(interval_seconds)
