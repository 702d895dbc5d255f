"""Experiments on any surface: assign a request, record what it was shown, attribute feedback.

A surface (``/recommend``, a content block...) calls, per request::

    assignment = await experiments.assign(user_id, segment=..., device=...)
    ... make the list, with ``StrategyRecommender.recommend(request, assignment)`` ...
    tag = await experiments.record(assignment, user_id, item_ids)
    body |= tag.fields(); headers |= tag.headers()

``record`` always returns a fresh ``recommendation_id``; only requests inside an experiment are
stored as exposures. Feedback events carrying ``context.recommendation_id`` are attributed by
``attribute`` (an ``EventIngestor`` listener). A failing exposure store never fails a request or
an event batch: the exposure or attribution is lost, counted in
``recserve_experiment_store_errors_total``, and logged.

Exposures hold the user's keyed pseudonym (``app.privacy.pseudonym``), never the id: the same
key as the consent store and the erasure list, so ``DELETE /users/{id}`` finds them
(``erase_user``). Assignment hashes the raw id (``experiments.assignment``): it is stable
across key rotations and never stored.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.events.types import Event
from app.experiments.assignment import Assignment, assign
from app.experiments.attribution import (
    COUNTER_OF_EVENT,
    DEFAULT_CLOCK_SKEW,
    Attributor,
    Counter,
    Exposure,
    ExposureStore,
    ExposureStoreUnavailable,
    Unattributed,
    VariantCounts,
)
from app.experiments.config import Experiment
from app.experiments.report import ExperimentReport, build_report
from app.infra.random_ids import random_hex
from app.monitoring.feedback import feedback_of
from app.observability import metrics
from app.privacy import Pseudonymizer

log = logging.getLogger(__name__)
RECOMMENDATION_ID_BYTES = 16  # 32 hex digits, as the uuid4 hex ids were

_COUNTER_METRICS = {
    Counter.IMPRESSIONS: metrics.EXPERIMENT_IMPRESSIONS,
    Counter.CLICKS: metrics.EXPERIMENT_CLICKS,
    Counter.CONVERSIONS: metrics.EXPERIMENT_CONVERSIONS,
}


@dataclass(frozen=True, slots=True)
class ExperimentTag:
    """What a response says about how it was made; the same values go in body and headers."""

    recommendation_id: str
    experiment_id: str | None
    variant: str | None

    def fields(self) -> dict[str, str | None]:
        return {
            "recommendation_id": self.recommendation_id,
            "experiment_id": self.experiment_id,
            "variant": self.variant,
        }

    def headers(self) -> dict[str, str]:
        """``X-Recommendation-ID`` always; ``X-Experiment-ID`` and ``X-Variant`` when assigned."""
        headers = {"X-Recommendation-ID": self.recommendation_id}
        if self.experiment_id is not None and self.variant is not None:
            headers["X-Experiment-ID"] = self.experiment_id
            headers["X-Variant"] = self.variant
        return headers


class ExperimentService:
    """The experiments of the config file and the exposure store they are measured in."""

    def __init__(
        self,
        experiments: Sequence[Experiment],
        store: ExposureStore,
        segment_of: Callable[[str], Awaitable[str | None]],
        window: timedelta,
        pseudonyms: Pseudonymizer,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    ) -> None:
        self._configured = tuple(experiments)
        self._experiments = self._configured
        self._by_id = {experiment.id: experiment for experiment in self._experiments}
        self._store = store
        self._pseudonyms = pseudonyms
        self._segment_of = segment_of
        self._attributor = Attributor(store, window, clock_skew)
        self._clock = clock
        self._targets_segments = any(e.targeting.segments for e in self._experiments)

    @property
    def experiments(self) -> tuple[Experiment, ...]:
        return self._experiments

    def experiment(self, experiment_id: str) -> Experiment | None:
        return self._by_id.get(experiment_id)

    def set_rollout(self, rollout: Experiment | None) -> None:
        """Put the guarded rollout's experiment (``serving.experiments.rollout``) first, ahead of
        the configured ones, or take it away (None). Its report and attribution work like any
        experiment's; its counters stay in the store once it is gone."""
        self._experiments = self._configured if rollout is None else (rollout, *self._configured)
        self._by_id = {experiment.id: experiment for experiment in self._experiments}

    async def variant_counts(self, experiment_id: str) -> dict[str, VariantCounts]:
        """The stored counters of every variant of ``experiment_id``, configured or not.
        Raises ``ExposureStoreUnavailable``."""
        return await self._store.variant_counts(experiment_id)

    async def assign(
        self, user_id: str, *, segment: str | None, device: str | None
    ) -> Assignment | None:
        """The user's experiment and variant for this request, or None for the default.

        Without a ``segment`` from the request, the user's segment feature is read, but only
        when some experiment targets segments (it costs a feature read) and the user consents
        to personalisation (``segment_of``, e.g. ``RecommendationEngine.segment``)."""
        if not self._experiments:
            return None
        if segment is None and self._targets_segments:
            segment = await self._segment_of(user_id)
        return assign(self._experiments, user_id, segment=segment, device=device, now=self._clock())

    async def record(
        self, assignment: Assignment | None, user_id: str, item_ids: Sequence[str]
    ) -> ExperimentTag:
        """A new recommendation id for the response; inside an experiment, its exposure is
        stored (items with their positions, the user's pseudonym, time) and counted."""
        tag = ExperimentTag(
            random_hex(RECOMMENDATION_ID_BYTES),
            None if assignment is None else assignment.experiment_id,
            None if assignment is None else assignment.variant,
        )
        if assignment is None:
            return tag
        try:
            await self._attributor.record_exposure(
                tag.recommendation_id,
                assignment,
                self._pseudonyms.of(user_id),
                item_ids,
                self._clock(),
            )
        except ExposureStoreUnavailable as exc:
            metrics.EXPERIMENT_STORE_ERRORS.labels("record").inc()
            log.warning("exposure not recorded: %s", exc)
            return tag
        metrics.EXPERIMENT_EXPOSURES.labels(assignment.experiment_id, assignment.variant).inc()
        return tag

    async def attribute(self, events: Sequence[Event]) -> None:
        """Attribute the feedback events that carry ``context.recommendation_id``; each one
        not attributed is counted in ``recserve_experiment_unattributed_events_total`` with
        its reason (and, when its exposure is known, in the variant's report)."""
        for event in events:
            feedback = feedback_of(event)
            if feedback is None:
                continue
            try:
                attributed = await self._attributor.attribute(feedback)
            except ExposureStoreUnavailable as exc:
                metrics.EXPERIMENT_STORE_ERRORS.labels("attribute").inc()
                metrics.EXPERIMENT_UNATTRIBUTED.labels("store_unavailable").inc()
                log.warning("event %s not attributed: %s", event.event_id, exc)
                continue
            if attributed is None:
                metrics.EXPERIMENT_UNATTRIBUTED.labels("unknown_recommendation").inc()
            elif isinstance(attributed, Unattributed):
                metrics.EXPERIMENT_UNATTRIBUTED.labels(attributed.value).inc()
            elif attributed.counted:
                counter = COUNTER_OF_EVENT[feedback.event_type]
                _COUNTER_METRICS[counter].labels(attributed.experiment_id, attributed.variant).inc()

    async def report(self, experiment_id: str) -> ExperimentReport | None:
        """The report of a configured experiment, None for an unknown id. Raises
        ``ExposureStoreUnavailable`` when the counters cannot be read."""
        experiment = self._by_id.get(experiment_id)
        if experiment is None:
            return None
        return build_report(experiment, await self._store.variant_counts(experiment_id))

    async def exposures_of(self, user_id: str) -> list[Exposure]:
        """The user's stored exposures, oldest first (an admin read: the store may scan).
        Raises ``ExposureStoreUnavailable``."""
        return await self._store.exposures_of(self._pseudonyms.of(user_id))

    async def erase_user(self, user_id: str) -> int:
        """Delete the user's exposures; returns how many. The variants' counters stay
        (anonymous totals). Raises ``ExposureStoreUnavailable``."""
        return await self._store.delete_user(self._pseudonyms.of(user_id))

    async def close(self) -> None:
        await self._store.close()
