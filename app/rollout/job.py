"""The rollout job: a background task of the server that looks at the running rollout every
``rollout.decide_seconds``, decides, and writes the before/after reports of model changes.

One look at a time across the home's workers: a look holds ``HOME/rollout/batch.lock`` and a
worker that finds it taken skips that look (``recserve rollout`` takes the same lock). A look:

1. with a ``CHALLENGER`` pointer, records the rollout when it is new, rolls it back when the
   workers refused to load the challenger, else runs the sequential test on the rollout
   experiment's counters and promotes or rolls back when it says so;
2. without one, closes a rollout left running (the pointer was removed by hand);
3. records a ``publish`` change when ``CURRENT`` names another model than the last change
   left (a build without the rollout, ``recserve data rollback``);
4. writes the report of each change whose after-window has ended.

Nothing here is on the request path; a failing store skips the look (counted in
``recserve_rollout_job_errors_total``) and the next one retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from app.artifacts import PublicationError, challenger_version, current_version
from app.batch.lock import BatchBusy, batch_lock
from app.events.log import EventLog
from app.events.types import Event, EventLogUnavailable
from app.experiments.attribution import ExposureStoreUnavailable, VariantCounts
from app.observability import metrics
from app.rollout.actions import RolloutContext, apply, decide, start_rollout
from app.rollout.before_after import build_report, read_segments, tally
from app.rollout.records import ModelChange, RolloutStatus
from app.rollout.sequential import Arms, Look, SequentialDesign, Verdict, look
from app.rollout.store import RolloutStoreUnavailable
from app.serving.experiments.rollout import CHALLENGER_ARM, CHAMPION_ARM, rollout_id
from app.settings import RolloutSettings

log = logging.getLogger(__name__)

REPORTS_CHECKED = 20  # the latest changes whose missing reports each look considers
LOG_PAGE = 10_000


def sequential_design(config: RolloutSettings) -> SequentialDesign:
    return SequentialDesign(
        alpha=config.alpha,
        min_impressions=config.min_impressions,
        max_impressions=config.max_impressions,
        non_inferiority=config.non_inferiority,
        mixture_effect=config.mixture_effect,
    )


class RolloutJob:
    def __init__(
        self,
        context: RolloutContext,
        counts: Callable[[str], Awaitable[dict[str, VariantCounts]]],
        event_log: EventLog,
        refusal: Callable[[str], str | None],
    ) -> None:
        self._context = context
        self._counts = counts
        self._event_log = event_log
        self._refusal = refusal

    async def run(self, interval_seconds: float) -> None:
        """A look every ``interval_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.look_once()
            except Exception:  # the job must outlive any surprise
                log.exception("rollout look failed")

    async def look_once(self) -> bool:
        """One look; False when another process was looking."""
        settings = self._context.settings
        try:
            with batch_lock(settings.rollout_dir, "rollout look"):
                await self._look()
        except BatchBusy:
            return False
        except RolloutStoreUnavailable as exc:
            metrics.ROLLOUT_JOB_ERRORS.labels("records").inc()
            log.error("rollout look skipped: %s", exc)
        except ExposureStoreUnavailable as exc:
            metrics.ROLLOUT_JOB_ERRORS.labels("exposures").inc()
            log.error("rollout look skipped: %s", exc)
        except EventLogUnavailable as exc:
            metrics.ROLLOUT_JOB_ERRORS.labels("event_log").inc()
            log.error("before/after report postponed: %s", exc)
        return True

    async def _look(self) -> None:
        root = self._context.settings.model_root
        try:
            current, challenger = current_version(root), challenger_version(root)
        except (OSError, PublicationError) as exc:
            log.error("rollout look skipped, model pointers unreadable: %s", exc)
            return
        if current is None:
            return
        if challenger is not None:
            await self._watch(challenger, current)
        else:
            await self._close_abandoned()
        await self._record_publish()
        await self._write_reports()

    async def _watch(self, challenger: str, champion: str) -> None:
        context = self._context
        rollout = await start_rollout(context, rollout_id(challenger), challenger, champion)
        if rollout.status != "running":
            await apply(context, rollout)  # decided, but the pointers had not followed
            return
        refused = self._refusal(challenger)
        if refused is not None:
            reason = f"serving refused to load the challenger: {refused}"
            await decide(context, rollout, "rolled_back", decided_by="test", reason=reason)
            return
        arms, result = self.judge(await self._counts(rollout.rollout_id))
        summary = _summary(arms, result)
        await asyncio.to_thread(context.store.record_look, rollout.rollout_id, summary)
        if result.verdict is Verdict.CONTINUE:
            return
        status: RolloutStatus = "promoted" if result.verdict is Verdict.PROMOTE else "rolled_back"
        await decide(
            context,
            rollout.model_copy(update={"last_look": summary}),
            status,
            decided_by="test",
            reason=result.reason,
        )

    def judge(self, counts: dict[str, VariantCounts]) -> tuple[Arms, Look]:
        """The compared counts of the rollout experiment's arms and the test's verdict on them;
        sets the gauges."""
        config = self._context.settings.rollout
        champion = counts.get(CHAMPION_ARM, VariantCounts())
        challenger = counts.get(CHALLENGER_ARM, VariantCounts())

        def successes(arm: VariantCounts) -> int:
            return arm.clicks if config.metric == "ctr" else arm.conversions

        arms = Arms(
            successes(champion), champion.impressions, successes(challenger), challenger.impressions
        )
        for name, hits, impressions in _arm_rows(arms):
            metrics.ROLLOUT_IMPRESSIONS.labels(name).set(impressions)
            metrics.ROLLOUT_RATE.labels(name).set(hits / impressions if impressions else 0.0)
        result = look(arms, sequential_design(config))
        if result.interval is not None:
            metrics.ROLLOUT_INTERVAL.labels("low").set(result.interval[0])
            metrics.ROLLOUT_INTERVAL.labels("high").set(result.interval[1])
        return arms, result

    async def _close_abandoned(self) -> None:
        """A rollout still running without its pointer was ended by hand: record it so."""
        context = self._context
        for rollout in await asyncio.to_thread(context.store.rollouts, 5):
            if rollout.status == "running":
                reason = "the CHALLENGER pointer was removed outside the rollout"
                await decide(context, rollout, "rolled_back", decided_by="operator", reason=reason)

    async def _record_publish(self) -> None:
        context = self._context
        current = current_version(context.settings.model_root)
        if current is None:
            return
        latest = await asyncio.to_thread(context.store.changes, 1)
        previous = latest[0].to_version if latest else None
        if previous == current:
            return
        at = context.clock()
        change = ModelChange(
            change_id=f"publish-{current}-{int(at)}",
            kind="publish",
            at=at,
            from_version=previous,
            to_version=current,
            reason="CURRENT changed outside the rollout",
        )
        await asyncio.to_thread(context.store.add_change, change)
        log.info("model change recorded: %s -> %s", previous, current)

    async def _write_reports(self) -> None:
        context = self._context
        window = context.settings.rollout.report_window_seconds
        now = context.clock()
        due = [
            change
            for change in await asyncio.to_thread(context.store.changes, REPORTS_CHECKED)
            if change.report is None and change.at + window <= now
        ]
        if not due:
            return
        segments = await asyncio.to_thread(read_segments, context.settings.offline_dir)
        for change in due:
            before = await self._events(change.at - window, change.at)
            after = await self._events(change.at, change.at + window)
            report = build_report(
                tally(before, segments), tally(after, segments), at=change.at, window_seconds=window
            )
            await asyncio.to_thread(
                context.store.save_report, change.change_id, report.model_dump(mode="json")
            )
            metrics.ROLLOUT_REPORTS.inc()
            log.info("before/after report written for %s", change.change_id)

    async def _events(self, start: float, end: float) -> list[Event]:
        """The log's events stamped in ``[start, end)``: a full scan, page by page."""
        found: list[Event] = []
        after: str | None = None
        while page := await self._event_log.iter_all(after, LOG_PAGE):
            found.extend(e.event for e in page if start <= e.event.timestamp < end)
            after = page[-1].position
        return found


def _arm_rows(arms: Arms) -> tuple[tuple[str, int, int], ...]:
    """(arm, successes, impressions) of both arms."""
    return (
        (CHAMPION_ARM, arms.champion_successes, arms.champion_impressions),
        (CHALLENGER_ARM, arms.challenger_successes, arms.challenger_impressions),
    )


def _summary(arms: Arms, result: Look) -> dict[str, Any]:
    """What the record store keeps of a look (and the UI shows)."""
    return {
        "verdict": result.verdict.value,
        "reason": result.reason,
        "arms": {
            name: {"successes": hits, "impressions": impressions}
            for name, hits, impressions in _arm_rows(arms)
        },
        "difference": result.difference,
        "interval": None if result.interval is None else list(result.interval),
    }
