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
    "event",
    [
        _event(EventType.PURCHASE, "i1", timedelta(hours=24, seconds=1)),  # after the window
        _event(EventType.CLICK, "i1", timedelta(seconds=-1)),  # before the exposure
        _event(EventType.CLICK, "i9", timedelta(seconds=1)),  # item not recommended
        _event(EventType.CLICK, "i1", timedelta(seconds=1), rec="rec-unknown"),
    ],
)
async def test_unattributable_events_are_refused_and_not_counted(
    attributor: Attributor, store: InMemoryExposureStore, event: FeedbackEvent
) -> None:
    assert await attributor.attribute(event) is None
    assert await store.variant_counts("ab-1") == {"control": VariantCounts(exposures=1, users=1)}


async def test_window_is_configurable(store: InMemoryExposureStore) -> None:
    attributor = Attributor(store, window=timedelta(hours=1))
    await attributor.record_exposure("rec-1", CONTROL, "alice", ["i1"], SERVED)
    assert await attributor.attribute(_event(EventType.CLICK, "i1", timedelta(minutes=59)))
    assert not await attributor.attribute(_event(EventType.CLICK, "i1", timedelta(minutes=61)))


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
    assert [r.counted if r else None for r in results] == [
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
