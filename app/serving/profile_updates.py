"""Read-your-writes for ingested events: fold them into the users' online behaviour features and
drop the users' cached answers, inside the request that logged them.

The read (``FeatureClient.get_user``) and the push run back to back on the event loop thread
with no ``await`` between them, so two requests of one worker never interleave a user's
read-modify-write (the engine reads features on the same thread the same way).
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from app.events.types import Event
from app.features.client import FeatureClient, FeatureStoreError
from app.features.push import ProfileWriteError, ProfileWriter
from app.features.schema import HISTORY_MAX_ITEMS, UserFeatures
from app.observability import metrics
from app.serving.cache import TieredCache

log = logging.getLogger(__name__)

# Shown to the user but not acted on: not part of their history (as in the batch features).
NOT_HISTORY = frozenset({"impression"})
FREQUENCY_WINDOW_SECONDS = 30 * 86_400
SECONDS_PER_DAY = 86_400.0


class ProfileUpdater:
    """Applies newly logged events to the online features and the recommendation cache."""

    def __init__(
        self,
        features: FeatureClient,
        writer: ProfileWriter,
        cache: TieredCache | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._features = features
        self._writer = writer
        self._cache = cache
        self._clock = clock

    @property
    def writer(self) -> ProfileWriter:
        return self._writer

    async def apply(self, events: Sequence[Event]) -> bool:
        """Merge ``events`` (already durably logged, no duplicates) into their users' features
        with one push, then invalidate those users in every cache tier. Returns False, counted
        and logged, when the features could not be updated: the events stay in the log."""
        by_user = _history_events_by_user(events)
        if not by_user:
            return True
        started = time.perf_counter()
        try:
            now = self._clock()
            current = self._features.get_users(list(by_user))
            profiles = [
                merge_events(current[user_id], user_id, user_events, now)
                for user_id, user_events in by_user.items()
            ]
            self._writer.write(profiles, datetime.fromtimestamp(now, UTC))
        except (FeatureStoreError, ProfileWriteError) as exc:
            metrics.EVENTS_PROFILE_UPDATE_FAILURES.inc()
            log.error("profile update of %d users failed: %s", len(by_user), exc)
            return False
        finally:
            metrics.EVENTS_PROFILE_UPDATE_SECONDS.observe(time.perf_counter() - started)
        if self._cache is not None:
            await self._cache.invalidate_users(list(by_user))
        visible_at = self._clock()
        for user_events in by_user.values():
            for event in user_events:
                metrics.EVENT_FRESHNESS_SECONDS.observe(max(0.0, visible_at - event.timestamp))
        return True


def merge_events(
    current: UserFeatures | None, user_id: str, events: Sequence[Event], now: float
) -> UserFeatures:
    """``current`` (or an empty profile) with ``events`` folded in: history distinct by item,
    ordered by last interaction (ties by item id, as the batch features), oldest -> newest,
    capped at ``HISTORY_MAX_ITEMS``; counters, monetary (purchase values) and recency updated.
    Attributes and top categories are left as they are."""
    base = current if current is not None else UserFeatures(user_id)
    history_items, history_timestamps = _merged_history(base, events)
    last_event_at = max(int(e.timestamp) for e in events)
    if base.last_event_at is not None:
        last_event_at = max(last_event_at, base.last_event_at)
    recent = sum(1 for e in events if e.timestamp > now - FREQUENCY_WINDOW_SECONDS)
    spent = sum(e.value or 0.0 for e in events if e.type == "purchase")
    return replace(
        base,
        history_items=history_items,
        history_timestamps=history_timestamps,
        interaction_count=base.interaction_count + len(events),
        recency_days=max(0.0, (now - last_event_at) / SECONDS_PER_DAY),
        frequency_30d=base.frequency_30d + recent,
        monetary=base.monetary + spent,
        last_event_at=last_event_at,
    )


def _merged_history(
    base: UserFeatures, events: Sequence[Event]
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(items, last times) oldest -> newest, capped: the stored history with ``events`` in.

    The stored history is already in order, and nothing an event touches can move before
    the oldest event's time: only the stored items from that time on are re-sorted with the
    events' items (a handful for live events), the older ones keep their order minus those
    seen again. A full sort of up to 2,000 items per user was most of a batch's cost."""
    new: dict[str, int] = {}
    for event in events:
        seconds = int(event.timestamp)
        if seconds >= new.get(event.item_id, seconds):
            new[event.item_id] = seconds
    items, times = base.history_items, base.history_timestamps
    cut = bisect.bisect_left(times, min(new.values()))
    head = [(item, t) for item, t in zip(items[:cut], times[:cut], strict=True) if item not in new]
    tail = dict(zip(items[cut:], times[cut:], strict=True))
    for item, seconds in new.items():
        if seconds >= tail.get(item, seconds):
            tail[item] = seconds
    merged = (head + sorted(tail.items(), key=lambda pair: (pair[1], pair[0])))[-HISTORY_MAX_ITEMS:]
    if not merged:
        return (), ()
    merged_items, merged_times = zip(*merged, strict=True)
    return merged_items, merged_times


def _history_events_by_user(events: Sequence[Event]) -> dict[str, list[Event]]:
    by_user: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.type not in NOT_HISTORY:
            by_user[event.user_id].append(event)
    return dict(by_user)
