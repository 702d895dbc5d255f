"""Attribution of feedback events to the experiment variant and position that caused them.

Every recommendation served inside an experiment is recorded as an ``Exposure`` under its
``recommendation_id``. A later ``impression``, ``click``, ``add_to_cart`` or ``purchase`` event
carrying that id is attributed when it happens within ``window`` of the exposure (late
conversions included; default 24 h) and names an item the exposure showed.

Clients stamp events in whole Unix seconds (or milliseconds) while ``served_at`` has
microseconds, and client clocks drift from the server's: an event is in the window when
``floor(served_at) - clock_skew <= occurred_at <= served_at + window + clock_skew``. An event
that names a known exposure but is not attributed is counted per variant with its
``Unattributed`` reason, so a report shows what it did not count.

Counting rules, so that every rate in the report is a proportion of impressions:

* ``exposures``: recommendation responses recorded; ``users``: distinct users, counted by the
  ``user_key`` the caller passes: a keyed pseudonym (``app.privacy.pseudonym``), so no store
  holds an id or a hash anyone can recompute from a guessed id.
* ``impressions``, ``clicks``, ``conversions``: each counts a ``(recommendation_id, item)`` pair
  at most once, however often the event is repeated. ``add_to_cart`` and ``purchase`` are both
  conversions and share that once-only rule.

All state lives behind ``ExposureStore`` so that several workers can share it: the in-memory
store here serves tests; ``store_sqlite`` (embedded default) and ``store_redis`` are what the
service runs on (``store.open_exposure_store``). Store methods raise ``ExposureStoreUnavailable``
when their backend fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from app.experiments.assignment import Assignment

DEFAULT_WINDOW = timedelta(hours=24)
DEFAULT_CLOCK_SKEW = timedelta(seconds=60)


class EventType(StrEnum):
    IMPRESSION = "impression"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"


class Counter(StrEnum):
    IMPRESSIONS = "impressions"
    CLICKS = "clicks"
    CONVERSIONS = "conversions"


COUNTER_OF_EVENT = {
    EventType.IMPRESSION: Counter.IMPRESSIONS,
    EventType.CLICK: Counter.CLICKS,
    EventType.ADD_TO_CART: Counter.CONVERSIONS,
    EventType.PURCHASE: Counter.CONVERSIONS,
}


class Unattributed(StrEnum):
    """Why a feedback event naming a stored exposure was not attributed to it."""

    BEFORE_EXPOSURE = "before_exposure"  # stamped earlier than the skew bound allows
    AFTER_WINDOW = "after_window"
    ITEM_NOT_SHOWN = "item_not_shown"


class ExposureStoreUnavailable(Exception):
    """The exposure store cannot be reached; the caller serves or ingests without it."""


@dataclass(frozen=True, slots=True)
class Exposure:
    """One recommendation response served inside an experiment."""

    recommendation_id: str
    experiment_id: str
    variant: str
    user_key: str  # the user's keyed pseudonym: the store never holds the raw id
    positions: dict[str, int]  # item id -> 1-based rank in the response
    served_at: datetime


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    event_type: EventType
    recommendation_id: str
    item_id: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Attributed:
    experiment_id: str
    variant: str
    position: int
    counted: bool  # False when this (recommendation, item) was already counted for the metric


@dataclass
class VariantCounts:
    exposures: int = 0
    users: int = 0
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    unattributed: dict[str, int] = field(default_factory=dict)  # Unattributed reason -> events


def counts_from_rows(
    rows: Iterable[Sequence[Any]], unattributed: Iterable[Sequence[Any]]
) -> dict[str, VariantCounts]:
    """Per variant counters from a SQL store's rows: ``(variant, exposures, impressions,
    clicks, conversions, users)`` and ``(variant, reason, events)``."""
    counts = {
        str(variant): VariantCounts(
            exposures=int(exposures),
            users=int(users),
            impressions=int(impressions),
            clicks=int(clicks),
            conversions=int(conversions),
        )
        for variant, exposures, impressions, clicks, conversions, users in rows
    }
    for variant, reason, events in unattributed:
        counts.setdefault(str(variant), VariantCounts()).unattributed[str(reason)] = int(events)
    return counts


class ExposureStore(Protocol):
    """Shared attribution state: exposures by recommendation id and per-variant counters."""

    async def save_exposure(self, exposure: Exposure, ttl: timedelta) -> None:
        """Keep ``exposure`` findable until ``served_at + ttl`` and count it and its user; a
        recommendation id already saved is left as it is (retries never double count)."""
        ...

    async def find_exposure(self, recommendation_id: str) -> Exposure | None:
        """The exposure recorded under ``recommendation_id``, or None."""
        ...

    async def count_once(self, exposure: Exposure, item_id: str, counter: Counter) -> bool:
        """Add one to ``counter`` of the exposure's variant unless this recommendation and
        item were already counted there; True when it counted."""
        ...

    async def count_unattributed(self, exposure: Exposure, reason: Unattributed) -> None:
        """Add one to the exposure's variant's count of events not attributed for ``reason``."""
        ...

    async def variant_counts(self, experiment_id: str) -> dict[str, VariantCounts]:
        """Counters of every variant of ``experiment_id`` that has any, by variant name."""
        ...

    async def exposures_of(self, user_key: str) -> list[Exposure]:
        """The user's stored exposures, oldest first (an admin operation: it may scan)."""
        ...

    async def delete_user(self, user_key: str) -> int:
        """Forget every stored exposure of the user (and, where the backend can, the user in the
        distinct-user counts); returns how many exposures went. The per-variant counters stay:
        anonymous totals."""
        ...

    async def close(self) -> None:
        """Release connections; the store must not be used afterwards."""
        ...


@dataclass
class _Entry:
    exposure: Exposure
    expires_at: datetime
    counted: set[tuple[str, Counter]] = field(default_factory=set)


class InMemoryExposureStore:
    """``ExposureStore`` in one process's memory (no locking: one event loop).

    Exposures are dropped once expired, judged by the ``served_at`` of newer exposures, so
    memory stays bounded by the traffic of one window. Counters are kept forever.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}  # insertion order ~ served_at order
        self._counts: dict[tuple[str, str], VariantCounts] = {}
        self._users: dict[tuple[str, str], set[str]] = {}

    async def save_exposure(self, exposure: Exposure, ttl: timedelta) -> None:
        """Store the exposure, count it and its user, and drop exposures already expired.

        Saving a recommendation id again changes nothing, so retries never double count."""
        self._drop_expired(exposure.served_at)
        if exposure.recommendation_id in self._entries:  # a retried write: already counted
            return
        key = (exposure.experiment_id, exposure.variant)
        counts = self._counts.setdefault(key, VariantCounts())
        users = self._users.setdefault(key, set())
        counts.exposures += 1
        users.add(exposure.user_key)
        counts.users = len(users)
        self._entries[exposure.recommendation_id] = _Entry(exposure, exposure.served_at + ttl)

    async def find_exposure(self, recommendation_id: str) -> Exposure | None:
        """The stored exposure, or None when unknown or dropped."""
        entry = self._entries.get(recommendation_id)
        return None if entry is None else entry.exposure

    async def count_once(self, exposure: Exposure, item_id: str, counter: Counter) -> bool:
        """Count ``counter`` for the pair unless already counted; True when it counted."""
        entry = self._entries.get(exposure.recommendation_id)
        if entry is None or (item_id, counter) in entry.counted:
            return False
        entry.counted.add((item_id, counter))
        counts = self._counts[(exposure.experiment_id, exposure.variant)]
        setattr(counts, counter.value, getattr(counts, counter.value) + 1)
        return True

    async def count_unattributed(self, exposure: Exposure, reason: Unattributed) -> None:
        """Count one event of the exposure's variant not attributed for ``reason``."""
        counts = self._counts[(exposure.experiment_id, exposure.variant)]
        counts.unattributed[reason.value] = counts.unattributed.get(reason.value, 0) + 1

    async def variant_counts(self, experiment_id: str) -> dict[str, VariantCounts]:
        """A copy of the counters of each variant of ``experiment_id``."""
        return {
            variant: dataclasses.replace(counts, unattributed=dict(counts.unattributed))
            for (experiment, variant), counts in self._counts.items()
            if experiment == experiment_id
        }

    async def exposures_of(self, user_key: str) -> list[Exposure]:
        """The user's exposures, oldest first."""
        found = [e.exposure for e in self._entries.values() if e.exposure.user_key == user_key]
        return sorted(found, key=lambda exposure: exposure.served_at)

    async def delete_user(self, user_key: str) -> int:
        """Drop the user's exposures and the user from the distinct-user sets."""
        doomed = [rec for rec, e in self._entries.items() if e.exposure.user_key == user_key]
        for recommendation_id in doomed:
            del self._entries[recommendation_id]
        for key, users in self._users.items():
            users.discard(user_key)
            self._counts[key].users = len(users)
        return len(doomed)

    async def close(self) -> None:
        """Nothing to release: the state lives and dies with the object."""

    def _drop_expired(self, now: datetime) -> None:
        while self._entries:
            oldest_id, oldest = next(iter(self._entries.items()))
            if oldest.expires_at >= now:
                return
            del self._entries[oldest_id]


class Attributor:
    """Records exposures and attributes feedback events to them through an ``ExposureStore``."""

    def __init__(
        self,
        store: ExposureStore,
        window: timedelta = DEFAULT_WINDOW,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    ) -> None:
        if window <= timedelta(0):
            raise ValueError(f"window must be positive, got {window}")
        if clock_skew < timedelta(0):
            raise ValueError(f"clock skew must not be negative, got {clock_skew}")
        self._store = store
        self._window = window
        self._clock_skew = clock_skew

    async def record_exposure(
        self,
        recommendation_id: str,
        assignment: Assignment,
        user_key: str,
        item_ids: Sequence[str],
        served_at: datetime,
    ) -> Exposure:
        """Record that ``item_ids`` (best first) were served under ``assignment`` to the user
        whose pseudonym is ``user_key`` (never the raw id: it is stored)."""
        positions: dict[str, int] = {}
        for rank, item_id in enumerate(item_ids, start=1):
            positions.setdefault(item_id, rank)
        exposure = Exposure(
            recommendation_id=recommendation_id,
            experiment_id=assignment.experiment_id,
            variant=assignment.variant,
            user_key=user_key,
            positions=positions,
            served_at=served_at,
        )
        await self._store.save_exposure(exposure, self._window)
        return exposure

    async def attribute(self, event: FeedbackEvent) -> Attributed | Unattributed | None:
        """The variant and position behind ``event``, counting it; else the reason it is not
        attributed (counted in the variant's ``unattributed``), or None when no exposure is
        stored under its recommendation id (served outside any experiment, or expired)."""
        exposure = await self._store.find_exposure(event.recommendation_id)
        if exposure is None:
            return None
        position = exposure.positions.get(event.item_id)
        reason = self._out_of_window(exposure.served_at, event.occurred_at)
        if position is None or reason is not None:
            reason = reason or Unattributed.ITEM_NOT_SHOWN
            await self._store.count_unattributed(exposure, reason)
            return reason
        counted = await self._store.count_once(
            exposure, event.item_id, COUNTER_OF_EVENT[event.event_type]
        )
        return Attributed(exposure.experiment_id, exposure.variant, position, counted)

    def _out_of_window(self, served_at: datetime, occurred_at: datetime) -> Unattributed | None:
        """Why ``occurred_at`` cannot follow an exposure served at ``served_at``, or None.

        An event stamped before its exposure cannot be caused by it, but clients send whole
        seconds and their clocks drift: the lower bound is the served second, less the skew."""
        earliest = served_at.replace(microsecond=0) - self._clock_skew
        if occurred_at < earliest:
            return Unattributed.BEFORE_EXPOSURE
        if occurred_at > served_at + self._window + self._clock_skew:
            return Unattributed.AFTER_WINDOW
        return None
