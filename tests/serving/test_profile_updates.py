"""Folding events into a user's behaviour features (pure merge, no store)."""

from __future__ import annotations

import pytest

from app.events.types import Event, EventType
from app.features.schema import HISTORY_MAX_ITEMS, UserFeatures
from app.serving.profile_updates import merge_events

NOW = 1_700_000_000.0


def _event(
    item_id: str, seconds: float, kind: EventType = "view", value: float | None = None
) -> Event:
    return Event(f"e-{item_id}-{seconds}", "u", item_id, kind, seconds, value)


def test_history_is_distinct_ordered_by_last_interaction() -> None:
    current = UserFeatures(
        "u",
        attribute_tokens=("age:30",),
        history_items=("a", "b", "c"),
        history_timestamps=(100, 200, 300),
        interaction_count=3,
        monetary=5.0,
        last_event_at=300,
    )
    merged = merge_events(
        current,
        "u",
        [_event("a", 400, "purchase", 2.5), _event("d", 350), _event("b", 150)],
        NOW,
    )
    assert merged.history_items == ("b", "c", "d", "a")
    assert merged.history_timestamps == (200, 300, 350, 400)
    assert merged.interaction_count == 6
    assert merged.monetary == pytest.approx(7.5)
    assert merged.last_event_at == 400
    assert merged.attribute_tokens == ("age:30",)


def test_unknown_user_starts_from_an_empty_profile() -> None:
    merged = merge_events(None, "new", [_event("x", NOW - 60, "click")], NOW)
    assert merged.user_id == "new"
    assert merged.history_items == ("x",)
    assert merged.frequency_30d == 1
    assert merged.recency_days == pytest.approx(60 / 86_400)
    assert merged.is_known


def test_history_is_capped_keeping_the_newest() -> None:
    events = [_event(f"i{n:04d}", 1_000 + n) for n in range(HISTORY_MAX_ITEMS + 5)]
    merged = merge_events(None, "u", events, NOW)
    assert len(merged.history_items) == HISTORY_MAX_ITEMS
    assert merged.history_items[0] == "i0005"
    assert merged.history_items[-1] == f"i{HISTORY_MAX_ITEMS + 4:04d}"
