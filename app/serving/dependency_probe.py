"""Keeps ``recserve_dependency_up`` current without anyone calling ``/readyz``.

Prometheus scrapes ``/metrics`` and load balancers call ``/healthz``: a gauge set only by
readiness checks would have no data for the DependencyDown alert. Each worker runs the same
checks as ``/readyz`` on an interval, in its background.
"""

from __future__ import annotations

import asyncio
import logging

from app.events.log import EventLog
from app.serving.engine import RecommendationEngine
from app.serving.health import check_dependencies
from app.serving.model_reload import ModelReloader

log = logging.getLogger(__name__)


async def watch_dependencies(
    engine: RecommendationEngine,
    event_log: EventLog,
    reloader: ModelReloader,
    interval_seconds: float,
) -> None:
    """Check every dependency (which sets the gauge) every ``interval_seconds``, the first
    time after one interval (start-up checks once itself); cancel the task to stop."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await check_dependencies(engine, event_log, reloader)
        except Exception:  # an unexpected failure must not end the probing for good
            log.exception("dependency probe failed")
