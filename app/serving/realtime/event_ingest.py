"""``POST /events`` behind the router: validate each event, log the valid ones durably, then
make them visible to the next recommendation (``ProfileUpdater``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import get_args

from app.events.log import EventLog
from app.events.schemas import EventBatchOut, EventRejection, validate_events
from app.events.types import AppendResult, Event, EventLogUnavailable, EventType
from app.observability import metrics
from app.privacy import ConsentService, Purpose
from app.serving.realtime.profile_updates import ProfileUpdater

_KNOWN_TYPES = frozenset(get_args(EventType))

# Called with each batch's newly stored events after the profile update; must not raise.
EventListener = Callable[[Sequence[Event]], Awaitable[None]]


class EventIngestor:
    """Holds the event log and the profile updater built at start-up."""

    def __init__(
        self,
        event_log: EventLog,
        updater: ProfileUpdater,
        listeners: Sequence[EventListener] = (),
        consent: ConsentService | None = None,
    ) -> None:
        self._log = event_log
        self._updater = updater
        self._listeners = tuple(listeners)
        self._consent = consent  # None: every user's events are stored
        # One batch at a time per worker. A batch is mostly CPU (validation, feature merge,
        # proto building): interleaved at their awaits, concurrent batches left each other's
        # Redis replies unread for tens of milliseconds, past the request path's timeouts,
        # and one such timeout opens a breaker for everyone. Queued, each batch's short
        # awaits are answered at once and the throughput is the same.
        self._one_at_a_time = asyncio.Lock()
        self.last_append_failure: str | None = None  # of the latest append; readiness shows it

    @property
    def event_log(self) -> EventLog:
        return self._log

    async def ingest(self, raw: Sequence[object]) -> EventBatchOut:
        """Validate, append and apply one batch; the answer names each event's outcome.

        Raises ``EventLogUnavailable`` when the log stored nothing (nothing is acknowledged),
        ``ConsentUnavailable`` when the users' tracking consent is unknown (nothing stored).
        A failing profile update does not fail the batch: its events are already durable."""
        async with self._one_at_a_time:
            return await self._ingest(raw)

    async def _ingest(self, raw: Sequence[object]) -> EventBatchOut:
        events, rejected = validate_events(raw)
        events, refused = await self._split_tracked(events)
        result = await self._append(events)
        accepted, duplicates = _split_stored(events, set(result.appended))
        _count(accepted, duplicates, rejected, raw)
        await self._updater.apply(accepted)
        for listener in self._listeners:
            await listener(accepted)
        for event in refused:
            metrics.EVENTS.labels(event.type, "not_consented").inc()
        return EventBatchOut.from_outcome(result, rejected, [e.event_id for e in refused])

    async def _append(self, events: list[Event]) -> AppendResult:
        if not events:
            return AppendResult((), ())
        try:
            result = await self._log.append(events)
        except EventLogUnavailable as exc:
            self.last_append_failure = str(exc)
            raise
        self.last_append_failure = None
        return result

    @property
    def write_failures(self) -> dict[str, str | None]:
        """The latest failure of each kind of write, None when the latest write succeeded."""
        return {
            "event_log_writes": self.last_append_failure,
            "profile_updates": self._updater.last_failure,
        }

    async def _split_tracked(self, events: list[Event]) -> tuple[list[Event], list[Event]]:
        """(events of users who consent to tracking, the others), one consent read per user."""
        if self._consent is None or not events:
            return events, []
        allowed = await self._consent.allows_many(
            [event.user_id for event in events], Purpose.TRACKING
        )
        tracked = [event for event in events if allowed[event.user_id]]
        refused = [event for event in events if not allowed[event.user_id]]
        return tracked, refused

    async def close(self) -> None:
        """Close the event log and the behaviour store."""
        await self._log.close()
        self._updater.store.close()


def _split_stored(events: Sequence[Event], appended: set[str]) -> tuple[list[Event], list[Event]]:
    """(stored, duplicates): the log stored the first occurrence of each appended id; every
    other event (an id logged before, or repeated within the batch) is a duplicate."""
    stored: list[Event] = []
    duplicates: list[Event] = []
    for event in events:
        if event.event_id in appended:
            stored.append(event)
            appended.discard(event.event_id)
        else:
            duplicates.append(event)
    return stored, duplicates


def _count(
    accepted: Sequence[Event],
    duplicates: Sequence[Event],
    rejected: Sequence[EventRejection],
    raw: Sequence[object],
) -> None:
    for event in accepted:
        metrics.EVENTS.labels(event.type, "accepted").inc()
    for event in duplicates:
        metrics.EVENTS.labels(event.type, "duplicate").inc()
    for rejection in rejected:
        metrics.EVENTS.labels(_type_label(raw[rejection.index]), "rejected").inc()


def _type_label(item: object) -> str:
    """The raw event's type when it is a known one; anything else would make labels unbounded."""
    kind = item.get("type") if isinstance(item, dict) else None
    return kind if isinstance(kind, str) and kind in _KNOWN_TYPES else "invalid"
