"""Folding events into a user's behaviour features (pure merge, no store)."""

from __future__ import annotations

import random

import pytest

from app.events.types import Event, EventType
from app.features.behaviour import BehaviourRow, History
from app.features.schema import HISTORY_MAX_ITEMS
from app.serving.realtime.profile_updates import merge_events

NOW = 1_700_000_000.0


def _event(
    item_id: str, seconds: float, kind: EventType = "view", value: float | None = None
) -> Event:
    return Event(f"e-{item_id}-{seconds}", "u", item_id, kind, seconds, value)


def test_history_is_distinct_ordered_by_last_interaction() -> None:
    current = BehaviourRow(
        "u",
        History.of(("a", "b", "c"), (100, 200, 300)),
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
    assert merged.history.items == ("b", "c", "d", "a")
    assert merged.history.times == (200, 300, 350, 400)
    assert merged.interaction_count == 6
    assert merged.monetary == pytest.approx(7.5)
    assert merged.last_event_at == 400


def test_unknown_user_starts_from_an_empty_profile() -> None:
    merged = merge_events(None, "new", [_event("x", NOW - 60, "click")], NOW)
    assert merged.user_id == "new"
    assert merged.history.items == ("x",)
    assert merged.frequency_30d == 1
    assert merged.recency_days == pytest.approx(60 / 86_400)


def test_history_is_capped_keeping_the_newest() -> None:
    events = [_event(f"i{n:04d}", 1_000 + n) for n in range(HISTORY_MAX_ITEMS + 5)]
    merged = merge_events(None, "u", events, NOW)
    assert len(merged.history) == HISTORY_MAX_ITEMS
    assert merged.history.items[0] == "i0005"
    assert merged.history.items[-1] == f"i{HISTORY_MAX_ITEMS + 4:04d}"
    assert merged.history.times[0] == 1_005


def _stored(history: list[tuple[str, int]]) -> History:
    """A history as the online store hands it back: protos parsed from their bytes."""
    items, times = History.of([i for i, _ in history], [t for _, t in history]).protos()
    return History(
        type(items).FromString(items.SerializeToString()),
        times.FromString(times.SerializeToString()),
    )


@pytest.mark.parametrize("seed", range(60))
def test_merge_matches_a_full_re_sort_of_history_and_events(seed: int) -> None:
    """Live batches (newer than the history) only append and items seen again move; any batch,
    ties included, must equal sorting everything by (last time, item id), capped."""
    rng = random.Random(seed)
    # Ids that hold each other's bytes, so the cheap "may hold" check also says maybe for
    # absent ids.
    items = [f"i{n}" for n in range(30)] + [f"\n\x02i{n}" for n in range(3)]
    times = sorted(rng.choices(range(1_000, 1_060), k=14))  # with ties
    history = sorted(zip(rng.sample(items, 14), times, strict=True), key=lambda p: (p[1], p[0]))
    current = BehaviourRow("u", _stored(history))
    start = (1_100, 1_050, 1_059)[seed % 3]  # every event newer / overlapping / tied
    events = [_event(rng.choice(items), rng.randrange(start, 1_120)) for _ in range(8)]
    cap = 10 if seed % 5 == 0 else HISTORY_MAX_ITEMS

    merged = BehaviourRow("u", current.history.merged(_latest(events), cap))

    last: dict[str, int] = dict(history)
    for event in events:
        last[event.item_id] = max(last.get(event.item_id, 0), int(event.timestamp))
    expected = sorted(last.items(), key=lambda p: (p[1], p[0]))[-cap:]
    assert list(zip(merged.history.items, merged.history.times, strict=True)) == expected
    assert current.history.items == tuple(i for i, _ in history)  # the stored one unchanged


def _latest(events: list[Event]) -> dict[str, int]:
    latest: dict[str, int] = {}
    for event in events:
        latest[event.item_id] = max(latest.get(event.item_id, 0), int(event.timestamp))
    return latest


def test_item_seen_again_is_found_past_a_look_alike_inside_another_id() -> None:
    # "ab" on the wire is b"\n\x02ab", which is also inside the first id's bytes.
    history = _stored([("\n\x02ab", 10), ("ab", 20), ("c", 30)])
    merged = history.merged({"ab": 40}, HISTORY_MAX_ITEMS)
    assert merged.items == ("\n\x02ab", "c", "ab")
    assert merged.times == (10, 30, 40)


def test_row_round_trips_through_its_protos() -> None:
    row = merge_events(None, "u", [_event("a", 100, "purchase", 3.0), _event("b", 90)], NOW)
    back = BehaviourRow.from_values("u", row.values())
    assert back is not None
    assert back.history.items == ("b", "a")
    assert back.history.times == (90, 100)
    assert (back.interaction_count, back.monetary, back.last_event_at) == (2, 3.0, 100)
    assert BehaviourRow.from_values("u", {}) is None
