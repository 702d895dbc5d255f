"""Feedback events as attribution reads them: the ones that name the recommendation they
followed. Shared by the experiments' attribution and the online quality counts."""

from __future__ import annotations

from datetime import UTC, datetime

from app.events.types import Event
from app.experiments.attribution import EventType, FeedbackEvent

RECOMMENDATION_ID_KEY = "recommendation_id"  # where feedback events carry it: in ``context``
_ATTRIBUTED_TYPES = frozenset(kind.value for kind in EventType)


def feedback_of(event: Event, key_prefix: str = "") -> FeedbackEvent | None:
    """The event as feedback on the exposure stored under ``key_prefix`` + its recommendation
    id, or None when it is not an attributed type or names no recommendation."""
    recommendation_id = (event.context or {}).get(RECOMMENDATION_ID_KEY)
    if event.type not in _ATTRIBUTED_TYPES or not isinstance(recommendation_id, str):
        return None
    return FeedbackEvent(
        EventType(event.type),
        key_prefix + recommendation_id,
        event.item_id,
        datetime.fromtimestamp(event.timestamp, UTC),
    )
