"""Readiness checks of every dependency the engine uses; each result also feeds a gauge."""

from __future__ import annotations

from dataclasses import dataclass

from app.events.log import EventLog
from app.events.types import EventLogUnavailable
from app.features.client import FeatureStoreError
from app.observability import metrics
from app.serving.cache import CacheUnavailable
from app.serving.engine import RecommendationEngine


@dataclass(frozen=True, slots=True)
class DependencyState:
    ok: bool
    detail: str


async def check_dependencies(
    engine: RecommendationEngine, event_log: EventLog | None = None
) -> dict[str, DependencyState]:
    states = {"model": DependencyState(True, f"version {engine.model.version} loaded")}
    try:
        engine.features.ping()
        states["feature_store"] = DependencyState(True, "online store answered")
    except FeatureStoreError as exc:
        states["feature_store"] = DependencyState(False, str(exc))
    if engine.cache is not None:
        for tier in engine.cache.tiers:
            try:
                await tier.ping()
                states[f"cache_{tier.tier}"] = DependencyState(True, "answered")
            except CacheUnavailable as exc:
                states[f"cache_{tier.tier}"] = DependencyState(False, str(exc))
    if event_log is not None:
        try:
            await event_log.ping()
            states["event_log"] = DependencyState(True, f"{event_log.backend} answered")
        except EventLogUnavailable as exc:
            states["event_log"] = DependencyState(False, str(exc))
    for name, state in states.items():
        metrics.DEPENDENCY_UP.labels(name).set(1 if state.ok else 0)
    return states
