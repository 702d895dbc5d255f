"""Feedback by raw user id: pseudonymised before it is stored, counted in metrics, and read on
the request path without ever failing a request (a failing store means no exclusions, counted)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from app.feedback.types import (
    NOTHING,
    Feedback,
    FeedbackKind,
    FeedbackStore,
    FeedbackTarget,
    FeedbackUnavailable,
    NotInterested,
)
from app.observability import metrics

log = logging.getLogger(__name__)


class UserFeedback:
    """``store`` keyed by ``key_of(user_id)`` (the consent service's pseudonyms); owns it."""

    def __init__(
        self,
        store: FeedbackStore,
        key_of: Callable[[str], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._key_of = key_of
        self._clock = clock

    async def record(
        self,
        user_id: str,
        kind: FeedbackKind,
        target: FeedbackTarget,
        target_id: str,
        rating: int | None = None,
    ) -> Feedback:
        """Store one statement durably; raises ``FeedbackUnavailable``."""
        feedback = Feedback(
            self._key_of(user_id), kind, target, target_id, round(self._clock(), 3), rating
        )
        await self._store.record(feedback)
        metrics.FEEDBACK.labels(kind.value, target.value).inc()
        return feedback

    async def not_interested(self, user_id: str) -> NotInterested:
        """What the user does not want to see; nothing while the store is failing."""
        try:
            return await self._store.not_interested(self._key_of(user_id))
        except FeedbackUnavailable as exc:
            metrics.FEEDBACK_READ_ERRORS.inc()
            log.warning("feedback store unavailable, answering without exclusions: %s", exc)
            return NOTHING

    async def entries(self, user_id: str) -> list[Feedback]:
        """Everything the user said (export); raises ``FeedbackUnavailable``."""
        return await self._store.entries(self._key_of(user_id))

    async def erase(self, user_id: str) -> int:
        """Delete everything the user said; raises ``FeedbackUnavailable``."""
        return await self._store.erase(self._key_of(user_id))

    async def close(self) -> None:
        await self._store.close()
