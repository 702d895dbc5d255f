"""Readiness checks of every dependency the engine uses; each result also feeds a gauge."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from app.events.log import EventLog
from app.events.types import EventLogUnavailable
from app.features.client import FeatureStoreError
from app.observability import metrics
from app.privacy import ConsentUnavailable
from app.serving.cache.tiered import CacheUnavailable
from app.serving.recommend.engine import RecommendationEngine
from app.serving.recommend.model_reload import ModelReloader


@dataclass(frozen=True, slots=True)
class DependencyState:
    ok: bool
    detail: str


async def check_dependencies(
    engine: RecommendationEngine,
    event_log: EventLog | None = None,
    reloader: ModelReloader | None = None,
    write_failures: Mapping[str, str | None] | None = None,
) -> dict[str, DependencyState]:
    """Each dependency's state. ``write_failures``: per kind of write, the error of the latest
    one when it failed; a store that reads but refuses writes (read-only, full) is down too."""
    states = {"model": DependencyState(True, f"version {engine.model.version} loaded")}
    if reloader is not None:
        refusal = reloader.refusal
        states["published_model"] = (
            DependencyState(True, "no published version refused")
            if refusal is None
            else DependencyState(False, f"{refusal.version or 'nothing'} refused: {refusal.reason}")
        )
    try:
        await asyncio.to_thread(engine.features.ping)  # a store round trip: off the loop
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
    if engine.consent is not None:
        try:
            await engine.consent.store.ping()
            states["consent_store"] = DependencyState(True, "answered")
        except ConsentUnavailable as exc:
            # Requests are then answered as if consent were withheld: popular items.
            states["consent_store"] = DependencyState(False, str(exc))
    if event_log is not None:
        try:
            await event_log.ping()
            states["event_log"] = DependencyState(True, f"{event_log.backend} answered")
        except EventLogUnavailable as exc:
            states["event_log"] = DependencyState(False, str(exc))
    for name, failure in (write_failures or {}).items():
        states[name] = (
            DependencyState(True, "the latest write succeeded")
            if failure is None
            else DependencyState(False, f"the latest write failed: {failure}")
        )
    for name, state in states.items():
        metrics.DEPENDENCY_UP.labels(name).set(1 if state.ok else 0)
    return states
