"""The monitoring of one serving process: what the request path feeds (``answers``), the drift
job, the console's metric history, and their background tasks."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from app.monitoring.answers import AnswerMonitor
from app.monitoring.drift_job import DriftJob
from app.monitoring.timeseries import MetricHistory
from app.settings import Settings


@dataclass
class Monitoring:
    answers: AnswerMonitor
    drift: DriftJob
    history: MetricHistory
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, settings: Settings) -> None:
        """The quality writer, the drift job and the history sampler, as configured."""
        config = settings.monitoring
        if self.answers.quality is not None:
            self._tasks.append(asyncio.create_task(self.answers.quality.run()))
        if config.drift_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(self.drift.run(config.drift_interval_seconds)))
        if config.chart_sample_seconds > 0:
            self._tasks.append(asyncio.create_task(self.history.run(config.chart_sample_seconds)))

    async def stop(self) -> None:
        """Cancel the tasks, write the exposures still queued, close the quality store."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.answers.quality is not None:
            await self.answers.quality.close()
