"""The monitoring's background tasks in a serving process: the online quality writer and the
drift job."""

from __future__ import annotations

import asyncio
import contextlib

from app.monitoring.answers import AnswerMonitor
from app.monitoring.drift_job import DriftJob
from app.settings import Settings


def start_monitoring(
    settings: Settings, monitor: AnswerMonitor, drift: DriftJob
) -> list[asyncio.Task[None]]:
    tasks = []
    if monitor.quality is not None:
        tasks.append(asyncio.create_task(monitor.quality.run()))
    interval = settings.monitoring.drift_interval_seconds
    if interval > 0:
        tasks.append(asyncio.create_task(drift.run(interval)))
    return tasks


async def stop_monitoring(monitor: AnswerMonitor, tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the tasks, write the exposures still queued, close the quality store."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if monitor.quality is not None:
        await monitor.quality.close()
