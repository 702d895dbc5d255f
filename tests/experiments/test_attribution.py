from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.experiments.assignment import Assignment
from app.experiments.attribution import (
    Attributed,
    Attributor,
    EventType,
    FeedbackEvent,
    InMemoryExposureStore,
    Unattributed,
    VariantCounts,
)
from app.experiments.config import ModelStrategy

SERVED = datetime(2025, 6, 15, 12, tzinfo=UTC)
CONTROL = Assignment("ab-1", "control", ModelStrategy(kind="model"))
TREATMENT = Assignment("ab-1", "treatment", ModelStrategy(kind="model", model_version="v2"))


def _event(kind: EventType, item: str, after: timedelta, rec: str = "rec-1") -> FeedbackEvent:
    return FeedbackEvent(kind, rec, item, SERVED + after)


@pytest.fixture
def store() -> InMemoryExposureStore:
    return InMemoryExposureStore()


@pytest.fixture
async def attributor(store: InMemoryExposureStore) -> Attributor:
    attributor = Attributor(store)
    await attributor.record_exposure("rec-1", CONTROL, "alice", ["i1", "i2", "i3"], SERVED)
    return attributor


async def test_event_is_attributed_to_variant_and_position(attributor: Attributor) -> None:
    click = _event(EventType.CLICK, "i2", timedelta(seconds=5))
    assert await attributor.attribute(click) == Attributed("ab-1", "control", 2, counted=True)


async def test_late_conversion_inside_the_window_counts(attributor: Attributor) -> None:
    purchase = _event(EventType.PURCHASE, "i3", timedelta(hours=24))
    assert await attributor.attribute(purchase) == Attributed("ab-1", "control", 3, True)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            _event(EventType.PURCHASE, "i1", timedelta(hours=24, seconds=61)),
            Unattributed.AFTER_WINDOW,
        ),
        (_event(EventType.CLICK, "i1", timedelta(seconds=-61)), Unattributed.BEFORE_EXPOSURE),
        (_event(EventType.CLICK, "i9", timedelta(seconds=1)), Unattributed.ITEM_NOT_SHOWN),
    ],
)
async def test_unattributable_events_are_counted_with_their_reason(
    attributor: Attributor, store: InMemoryExposureStore, event: FeedbackEvent, reason: Unattributed
) -> None:
    assert await attributor.attribute(event) is reason
    assert await store.variant_counts("ab-1") == {
        "control": VariantCounts(exposures=1, users=1, unattributed={reason.value: 1})
    }


async def test_an_unknown_recommendation_is_not_attributed(
    attributor: Attributor, store: InMemoryExposureStore
) -> None:
    unknown = _event(EventType.CLICK, "i1", timedelta(seconds=1), rec="rec-unknown")
    assert await attributor.attribute(unknown) is None
    assert await store.variant_counts("ab-1") == {"control": VariantCounts(exposures=1, users=1)}


async def test_whole_second_events_in_the_served_second_are_attributed(
    store: InMemoryExposureStore,
) -> None:
    attributor = Attributor(store, clock_skew=timedelta(0))
    served = SERVED + timedelta(milliseconds=700)  # served_at carries fractions of a second
    await attributor.record_exposure("rec-1", CONTROL, "alice", ["i1"], served)
    stamped_in_whole_seconds = FeedbackEvent(EventType.IMPRESSION, "rec-1", "i1", SERVED)
    assert await attributor.attribute(stamped_in_whole_seconds) == Attributed(
        "ab-1", "control", 1, True
    )
    earlier = FeedbackEvent(EventType.CLICK, "rec-1", "i1", SERVED - timedelta(seconds=1))
    assert await attributor.attribute(earlier) is Unattributed.BEFORE_EXPOSURE


async def test_client_clock_skew_is_tolerated_within_its_bound(
    store: InMemoryExposureStore,
) -> None:
    attributor = Attributor(store, window=timedelta(hours=1), clock_skew=timedelta(seconds=30))
    await attributor.record_exposure("rec-1", CONTROL, "alice", ["i1", "i2", "i3"], SERVED)
    late_clock = _event(EventType.IMPRESSION, "i1", timedelta(seconds=-30))
    assert isinstance(await attributor.attribute(late_clock), Attributed)
    too_early = _event(EventType.IMPRESSION, "i2", timedelta(seconds=-31))
    assert await attributor.attribute(too_early) is Unattributed.BEFORE_EXPOSURE
    fast_clock = _event(EventType.PURCHASE, "i1", timedelta(hours=1, seconds=30))
    assert isinstance(await attributor.attribute(fast_clock), Attributed)
    too_late = _event(EventType.PURCHASE, "i3", timedelta(hours=1, seconds=31))
    assert await attributor.attribute(too_late) is Unattributed.AFTER_WINDOW


def test_clock_skew_must_not_be_negative(store: InMemoryExposureStore) -> None:
    with pytest.raises(ValueError, match="clock skew must not be negative"):
        Attributor(store, clock_skew=timedelta(seconds=-1))


async def test_window_is_configurable(store: InMemoryExposureStore) -> None:
    attributor = Attributor(store, window=timedelta(hours=1))
    await attributor.record_exposure("rec-1", CONTROL, "alice", ["i1"], SERVED)
    assert await attributor.attribute(_event(EventType.CLICK, "i1", timedelta(minutes=59)))
    too_late = _event(EventType.CLICK, "i1", timedelta(minutes=62))
    assert await attributor.attribute(too_late) is Unattributed.AFTER_WINDOW


def test_window_must_be_positive(store: InMemoryExposureStore) -> None:
    with pytest.raises(ValueError, match="window must be positive"):
        Attributor(store, window=timedelta(0))


async def test_counters_count_each_recommendation_item_pair_once(
    attributor: Attributor, store: InMemoryExposureStore
) -> None:
    second = timedelta(seconds=1)
    events = [
        _event(EventType.IMPRESSION, "i1", second),
        _event(EventType.IMPRESSION, "i1", second),  # repeated impression
        _event(EventType.IMPRESSION, "i2", second),
        _event(EventType.CLICK, "i1", second),
        _event(EventType.CLICK, "i1", 2 * second),  # double click
        _event(EventType.ADD_TO_CART, "i1", 3 * second),
        _event(EventType.PURCHASE, "i1", 4 * second),  # same item: still one conversion
        _event(EventType.PURCHASE, "i2", 4 * second),
    ]
    results = [await attributor.attribute(e) for e in events]
    assert [r.counted if isinstance(r, Attributed) else None for r in results] == [
        True,
        False,
        True,
        True,
        False,
        True,
        False,
        True,
    ]
    assert (await store.variant_counts("ab-1"))["control"] == VariantCounts(
        exposures=1, users=1, impressions=2, clicks=1, conversions=2
    )


async def test_exposures_and_unique_users_per_variant(
    attributor: Attributor, store: InMemoryExposureStore
) -> None:
    await attributor.record_exposure("rec-2", CONTROL, "alice", ["i1"], SERVED)
    await attributor.record_exposure("rec-3", CONTROL, "bob", ["i1"], SERVED)
    await attributor.record_exposure("rec-4", TREATMENT, "carol", ["i1"], SERVED)
    await attributor.record_exposure("rec-4", TREATMENT, "carol", ["i1"], SERVED)  # retried
    other = Assignment("ab-2", "control", ModelStrategy(kind="model"))
    await attributor.record_exposure("rec-5", other, "dave", ["i1"], SERVED)
    assert await store.variant_counts("ab-1") == {
        "control": VariantCounts(exposures=3, users=2),
        "treatment": VariantCounts(exposures=1, users=1),
    }


async def test_duplicate_items_keep_their_best_position(attributor: Attributor) -> None:
    exposure = await attributor.record_exposure("rec-2", CONTROL, "bob", ["a", "b", "a"], SERVED)
    assert exposure.positions == {"a": 1, "b": 2}


async def test_memory_store_drops_expired_exposures(
    attributor: Attributor, store: InMemoryExposureStore
) -> None:
    await attributor.record_exposure("rec-2", CONTROL, "bob", ["i1"], SERVED + timedelta(hours=1))
    assert await store.find_exposure("rec-1") is not None
    later = SERVED + timedelta(hours=24, seconds=1)
    await attributor.record_exposure("rec-3", CONTROL, "bob", ["i1"], later)
    assert await store.find_exposure("rec-1") is None
    assert await store.find_exposure("rec-2") is not None
    assert (await store.variant_counts("ab-1"))["control"].exposures == 3
