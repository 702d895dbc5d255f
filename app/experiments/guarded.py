"""A circuit breaker in front of the shared exposure store, as in front of the feature store.

Every ``/recommend`` and content block inside an experiment records its exposure: with Redis
hung, each waited its full socket timeout while answers outside experiments did not. After one
failed call the breaker refuses at once (``ExposureStoreUnavailable``: the exposure is not
recorded, the answer goes out) until ``retry_after_seconds`` have passed, then lets one trial
call through. Only the request paths (save, find, the counts) are guarded; the admin reads and
erasure always ask the store, so they report its real state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from app.experiments.attribution import (
    Counter,
    Exposure,
    ExposureStore,
    ExposureStoreUnavailable,
    Unattributed,
    VariantCounts,
)
from app.infra.breaker import CircuitBreaker

R = TypeVar("R")


class BreakerExposureStore:
    """``ExposureStore`` that stops calling a failing store for a while."""

    def __init__(self, inner: ExposureStore, breaker: CircuitBreaker) -> None:
        self._inner = inner
        self._breaker = breaker

    async def save_exposure(self, exposure: Exposure, ttl: timedelta) -> None:
        await self._guarded(lambda: self._inner.save_exposure(exposure, ttl))

    async def find_exposure(self, recommendation_id: str) -> Exposure | None:
        return await self._guarded(lambda: self._inner.find_exposure(recommendation_id))

    async def count_once(self, exposure: Exposure, item_id: str, counter: Counter) -> bool:
        return await self._guarded(lambda: self._inner.count_once(exposure, item_id, counter))

    async def count_unattributed(self, exposure: Exposure, reason: Unattributed) -> None:
        await self._guarded(lambda: self._inner.count_unattributed(exposure, reason))

    async def variant_counts(self, experiment_id: str) -> dict[str, VariantCounts]:
        return await self._inner.variant_counts(experiment_id)

    async def exposures_of(self, user_key: str) -> list[Exposure]:
        return await self._inner.exposures_of(user_key)

    async def delete_user(self, user_key: str) -> int:
        return await self._inner.delete_user(user_key)

    async def close(self) -> None:
        await self._inner.close()

    async def _guarded(self, call: Callable[[], Awaitable[R]]) -> R:
        if not self._breaker.allow():
            raise ExposureStoreUnavailable("exposure store skipped: it failed recently")
        try:
            answer = await call()
        except ExposureStoreUnavailable:
            self._breaker.record_failure()
            raise
        self._breaker.record_success()
        return answer
