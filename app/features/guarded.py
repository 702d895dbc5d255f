"""A circuit breaker in front of the online feature store.

A hung or slow Redis costs every read its full socket timeout. After one failed read the
breaker answers ``FeatureStoreError`` at once (the request falls back to popular items without
waiting) until ``retry_after_seconds`` have passed, then lets one trial read through. ``ping``
(readiness) always asks the store itself, so ``/readyz`` reports its real state.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from app.features.client import FeatureClient, FeatureStoreError
from app.features.schema import UserFeatures
from app.infra.breaker import CircuitBreaker

T = TypeVar("T")
R = TypeVar("R")


class BreakerFeatureClient:
    """``FeatureClient`` that stops calling a failing store for a while."""

    def __init__(self, inner: FeatureClient, breaker: CircuitBreaker) -> None:
        self._inner = inner
        self._breaker = breaker

    def get_user(
        self, user_id: str, features: Collection[str] | None = None
    ) -> UserFeatures | None:
        return self._guarded(self._inner.get_user, user_id, features)

    def get_users(
        self, user_ids: Sequence[str], features: Collection[str] | None = None
    ) -> dict[str, UserFeatures | None]:
        return self._guarded(self._inner.get_users, user_ids, features)

    def _guarded(
        self,
        read: Callable[[T, Collection[str] | None], R],
        argument: T,
        features: Collection[str] | None,
    ) -> R:
        if not self._breaker.allow():
            raise FeatureStoreError("online store skipped: it failed recently (circuit open)")
        try:
            answer = read(argument, features)
        except FeatureStoreError:
            self._breaker.record_failure()
            raise
        self._breaker.record_success()
        return answer

    def ping(self) -> None:
        self._inner.ping()

    def close(self) -> None:
        self._inner.close()
