"""Read-your-writes for ingested events: fold them into the users' online behaviour features and
drop the users' cached answers, inside the request that logged them.

The read (``BehaviourStore.read``) and the write run back to back on the event loop thread
with no ``await`` between them, so two requests of one worker never interleave a user's
read-modify-write (the engine reads features on the same thread the same way).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from app.events.types import Event
from app.features.behaviour import BehaviourRow
from app.features.client import FeatureStoreError
from app.features.push import BehaviourStore, ProfileWriteError
from app.features.schema import HISTORY_MAX_ITEMS
from app.observability import metrics
from app.serving.cache.tiered import TieredCache

log = logging.getLogger(__name__)

# Shown to the user but not acted on: not part of their history (as in the batch features).
NOT_HISTORY = frozenset({"impression"})
# SQLite's answer when another process holds the write lock past the busy timeout.
LOCKED = "database is locked"
LOCKED_ATTEMPTS = 5  # with the busy timeout, about half a second in all
LOCKED_BACKOFF_SECONDS = 0.02
FREQUENCY_WINDOW_SECONDS = 30 * 86_400
SECONDS_PER_DAY = 86_400.0


class ProfileUpdater:
    """Applies newly logged events to the online features and the recommendation cache."""

    def __init__(
        self,
        store: BehaviourStore,
        cache: TieredCache | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._cache = cache
        self._clock = clock
        self.last_failure: str | None = None  # of the latest update; readiness shows it

    @property
    def store(self) -> BehaviourStore:
        return self._store

    async def apply(self, events: Sequence[Event]) -> bool:
        """Merge ``events`` (already durably logged, no duplicates) into their users' features
        with one push, then invalidate those users in every cache tier. Returns False, counted
        and logged, when the features could not be updated: the events stay in the log."""
        by_user = _history_events_by_user(events)
        if not by_user:
            return True
        started = time.perf_counter()
        try:
            for attempt in range(LOCKED_ATTEMPTS):
                try:
                    self._read_merge_write(by_user)
                    break
                except (FeatureStoreError, ProfileWriteError) as exc:
                    if LOCKED not in str(exc) or attempt == LOCKED_ATTEMPTS - 1:
                        raise
                # Another worker holds the SQLite lock: wait off the event loop and read
                # again, since that writer may have updated these very users.
                metrics.EVENTS_PROFILE_UPDATE_RETRIES.inc()
                await asyncio.sleep(LOCKED_BACKOFF_SECONDS * 2**attempt)
        except (FeatureStoreError, ProfileWriteError) as exc:
            metrics.EVENTS_PROFILE_UPDATE_FAILURES.inc()
            log.error("profile update of %d users failed: %s", len(by_user), exc)
            self.last_failure = str(exc)
            return False
        finally:
            metrics.EVENTS_PROFILE_UPDATE_SECONDS.observe(time.perf_counter() - started)
        self.last_failure = None
        if self._cache is not None:
            await self._cache.invalidate_users(list(by_user))
        visible_at = self._clock()
        for user_events in by_user.values():
            for event in user_events:
                metrics.EVENT_FRESHNESS_SECONDS.observe(max(0.0, visible_at - event.timestamp))
        return True

    def _read_merge_write(self, by_user: dict[str, list[Event]]) -> None:
        # No await between the read and the write (see the module docstring).
        now = self._clock()
        current = self._store.read(list(by_user))
        rows = [
            merge_events(current[user_id], user_id, user_events, now)
            for user_id, user_events in by_user.items()
        ]
        self._store.write(rows, datetime.fromtimestamp(now, UTC))


def merge_events(
    current: BehaviourRow | None, user_id: str, events: Sequence[Event], now: float
) -> BehaviourRow:
    """``current`` (or an empty row) with ``events`` folded in: history distinct by item,
    ordered by last interaction (ties by item id, as the batch features), oldest -> newest,
    capped at ``HISTORY_MAX_ITEMS``; counters, monetary (purchase values) and recency updated.
    Top categories are left as they are (the batch job recomputes them)."""
    base = current if current is not None else BehaviourRow(user_id)
    latest: dict[str, int] = {}
    for event in events:
        seconds = int(event.timestamp)
        if seconds >= latest.get(event.item_id, seconds):
            latest[event.item_id] = seconds
    last_event_at = max(int(e.timestamp) for e in events)
    if base.last_event_at is not None:
        last_event_at = max(last_event_at, base.last_event_at)
    recent = sum(1 for e in events if e.timestamp > now - FREQUENCY_WINDOW_SECONDS)
    spent = sum(e.value or 0.0 for e in events if e.type == "purchase")
    return replace(
        base,
        history=base.history.merged(latest, HISTORY_MAX_ITEMS),
        interaction_count=base.interaction_count + len(events),
        recency_days=max(0.0, (now - last_event_at) / SECONDS_PER_DAY),
        frequency_30d=base.frequency_30d + recent,
        monetary=base.monetary + spent,
        last_event_at=last_event_at,
    )


def _history_events_by_user(events: Sequence[Event]) -> dict[str, list[Event]]:
    by_user: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.type not in NOT_HISTORY:
            by_user[event.user_id].append(event)
    return dict(by_user)
