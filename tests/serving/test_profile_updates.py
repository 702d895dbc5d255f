"""Folding events into a user's behaviour features (pure merge, no store)."""

from __future__ import annotations

import random

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


@pytest.mark.parametrize("seed", range(40))
def test_merge_matches_a_full_re_sort_of_history_and_events(seed: int) -> None:
    """Newer-than-history batches take a shortcut; any batch must equal sorting everything by
    (last time, item id)."""
    rng = random.Random(seed)
    items = [f"i{n}" for n in range(30)]
    times = sorted(rng.sample(range(1_000, 1_100), 12))
    history = sorted(zip(rng.sample(items, 12), times, strict=True), key=lambda p: (p[1], p[0]))
    current = UserFeatures(
        "u",
        history_items=tuple(i for i, _ in history),
        history_timestamps=tuple(t for _, t in history),
    )
    start = 1_100 if seed % 2 else 1_050  # odd seeds: every event newer than the history
    events = [_event(rng.choice(items), rng.randrange(start, 1_200)) for _ in range(8)]

    merged = merge_events(current, "u", events, NOW)

    last: dict[str, int] = dict(history)
    for event in events:
        last[event.item_id] = max(last.get(event.item_id, 0), int(event.timestamp))
    expected = sorted(last.items(), key=lambda p: (p[1], p[0]))
    assert list(zip(merged.history_items, merged.history_timestamps, strict=True)) == expected
