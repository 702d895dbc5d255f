"""The drift job: live windows against the served model's training snapshot, off the request
path.

Each run pages the event log forward from where the last run stopped (``iter_all``; the first
run replays the log once), keeps the last ``reference.window`` interactions (impressions are
not interactions, as at training), folds in the answers the reservoir sampled since, and
compares both with the reference (``app.monitoring.drift``). ``recserve serve`` runs it in each
worker every ``RECSERVE_MONITORING__DRIFT_INTERVAL_SECONDS``; ``recserve drift`` runs it once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.events.log import EventLog
from app.events.types import EventLogUnavailable
from app.monitoring.answers import AnswerReservoir
from app.monitoring.drift import FeatureDrift, SampledAnswer, WindowEvent, compare
from app.monitoring.snapshot import ReferenceSnapshot, load_snapshot
from app.observability import metrics

log = logging.getLogger(__name__)

PAGE = 10_000
ANSWER_WINDOW = 2_000
MIN_EVENTS = 1_000
MIN_ANSWERS = 200
WATCH_PSI, ALERT_PSI = 0.1, 0.25  # the usual reading of a PSI; the alert fires at ALERT_PSI
NOT_INTERACTIONS = frozenset({"impression"})


@dataclass(frozen=True)
class DriftReport:
    model_dir: Path
    events: int
    answers: int
    features: list[FeatureDrift]

    def to_json(self) -> dict[str, Any]:
        return {
            "model_dir": str(self.model_dir),
            "events": self.events,
            "answers": self.answers,
            "thresholds": {"watch": WATCH_PSI, "alert": ALERT_PSI},
            "features": [
                {
                    "feature": f.feature,
                    "psi": f.psi,
                    "status": status(f.psi),
                    "reference": f.reference.model_dump(),
                    "live": f.live.model_dump(),
                }
                for f in self.features
            ],
        }

    def format(self) -> str:
        lines = [
            f"drift of live traffic from the training snapshot of {self.model_dir.name}",
            f"live window: {self.events} events, {self.answers} sampled answers",
            f"{'feature':<16}{'psi':>8}  {'status':<12}{'live n':>8}",
        ]
        for f in self.features:
            shown = "—" if f.psi is None else f"{f.psi:.3f}"
            lines.append(f"{f.feature:<16}{shown:>8}  {status(f.psi):<12}{f.live.observations:>8}")
        lines.append(f"status: ok < {WATCH_PSI} <= watch < {ALERT_PSI} <= drift")
        return "\n".join(lines)


def status(value: float | None) -> str:
    if value is None:
        return "too_few"
    return "drift" if value >= ALERT_PSI else "watch" if value >= WATCH_PSI else "ok"


class DriftJob:
    """Keeps the live windows between runs; one per process."""

    def __init__(
        self,
        event_log: EventLog,
        model_dir: Callable[[], Path],
        reservoir: AnswerReservoir | None = None,
        *,
        min_events: int = MIN_EVENTS,
        min_answers: int = MIN_ANSWERS,
    ) -> None:
        self._log = event_log
        self._model_dir = model_dir
        self._reservoir = reservoir
        self._min_events = min_events
        self._min_answers = min_answers
        self._snapshot: ReferenceSnapshot | None = None
        self._events: deque[WindowEvent] = deque(maxlen=1)
        self._answers: deque[SampledAnswer] = deque(maxlen=ANSWER_WINDOW)
        self._cursor: str | None = None
        self._running = asyncio.Lock()  # the background loop and the console may both ask
        self.last: DriftReport | None = None

    async def run_once(self) -> DriftReport | None:
        """Read what is new, compare, publish the gauges; None when the served model has no
        reference. Raises ``EventLogUnavailable``."""
        async with self._running:
            return await self._run_once()

    async def _run_once(self) -> DriftReport | None:
        snapshot = await asyncio.to_thread(self._current_snapshot)
        if snapshot is None:
            metrics.DRIFT_RUNS.labels("no_reference").inc()
            return None
        if self._events.maxlen != snapshot.reference.window:
            self._events = deque(self._events, maxlen=snapshot.reference.window)
        await self._read_new_events()
        if self._reservoir is not None:
            self._answers.extend(self._reservoir.take())
        features = measure(
            snapshot, self._events, self._answers, self._min_events, self._min_answers
        )
        report = DriftReport(snapshot.model_dir, len(self._events), len(self._answers), features)
        publish(report)
        self.last = report
        return report

    async def run(self, interval_seconds: float) -> None:
        """``run_once`` every ``interval_seconds`` until cancelled; failures are counted."""
        while True:
            try:
                await self.run_once()
            except EventLogUnavailable as exc:
                metrics.DRIFT_RUNS.labels("failed").inc()
                log.warning("drift job could not read the event log: %s", exc)
            await asyncio.sleep(interval_seconds)

    def _current_snapshot(self) -> ReferenceSnapshot | None:
        model_dir = self._model_dir()
        if self._snapshot is None or self._snapshot.model_dir != model_dir:
            self._snapshot = load_snapshot(model_dir)
        return self._snapshot

    async def _read_new_events(self) -> None:
        while True:
            page = await self._log.iter_all(self._cursor, PAGE)
            if not page:
                return
            self._cursor = page[-1].position
            self._events.extend(
                WindowEvent(logged.event.user_id, logged.event.item_id)
                for logged in page
                if logged.event.type not in NOT_INTERACTIONS
            )
            if len(page) < PAGE:
                return


def measure(
    snapshot: ReferenceSnapshot,
    events: Sequence[WindowEvent],
    answers: Sequence[SampledAnswer],
    min_events: int = MIN_EVENTS,
    min_answers: int = MIN_ANSWERS,
) -> list[FeatureDrift]:
    """Every feature's drift of ``events`` and ``answers`` (the live windows) from the
    snapshot's reference. A reference window shorter than ``min_events`` (small training data)
    lowers the bar to a full window."""
    binner = snapshot.binner
    live = binner.event_histograms(events, snapshot.known_items.__contains__)
    live |= binner.answer_histograms(answers)
    return compare(
        snapshot.reference.histograms,
        live,
        min_events=min(min_events, snapshot.reference.window),
        min_answers=min_answers,
        full_window=len(events) >= snapshot.reference.window,
    )


def publish(report: DriftReport) -> None:
    for found in report.features:
        value = math.nan if found.psi is None else found.psi
        metrics.DRIFT_PSI.labels(found.feature).set(value)
        if found.live.labels == ["known", "unknown"]:
            share = found.live.shares[1] if found.live.observations else math.nan
            metrics.DRIFT_UNKNOWN_SHARE.labels(found.feature).set(share)
    metrics.DRIFT_RUNS.labels("computed").inc()
    metrics.DRIFT_LAST_RUN.set(time.time())
