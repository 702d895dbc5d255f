"""Keeps ``recserve_dependency_up`` current without anyone calling ``/readyz``.

Prometheus scrapes ``/metrics`` and load balancers call ``/healthz``: a gauge set only by
readiness checks would have no data for the DependencyDown alert. Each worker runs the same
checks as ``/readyz`` on an interval, in its background.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from app.events.log import EventLog
from app.serving.health import check_dependencies
from app.serving.recommend.engine import RecommendationEngine
from app.serving.recommend.model_reload import ModelReloader

log = logging.getLogger(__name__)


async def watch_dependencies(
    engine: RecommendationEngine,
    event_log: EventLog,
    reloader: ModelReloader,
    write_failures: Callable[[], Mapping[str, str | None]],
    interval_seconds: float,
) -> None:
    """Check every dependency (which sets the gauge) every ``interval_seconds``, the first
    time after one interval (start-up checks once itself); cancel the task to stop.
    ``write_failures`` gives the latest failed writes at each check, as ``/readyz`` sees them."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await check_dependencies(engine, event_log, reloader, write_failures())
        except Exception:  # an unexpected failure must not end the probing for good
            log.exception("dependency probe failed")
