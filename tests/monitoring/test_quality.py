"""Online quality counts: every answer's exposure, attributed feedback per label set."""

from __future__ import annotations

import time
from datetime import timedelta

from prometheus_client import REGISTRY

from app.events.types import Event
from app.experiments.attribution import InMemoryExposureStore
from app.monitoring.quality import AnswerLabels, QualityTracker


def sample(name: str, labels: AnswerLabels) -> float:
    values = {
        "model_version": labels.model_version,
        "source": labels.source,
        "segment": labels.segment,
        "device": labels.device,
    }
    return REGISTRY.get_sample_value(name, values) or 0.0


def event(kind: str, item: str, recommendation_id: str, n: int) -> Event:
    context = {"recommendation_id": recommendation_id}
    return Event(f"e{n}-{recommendation_id}", "u1", item, kind, time.time(), None, context)


def test_labels_stay_bounded_and_survive_packing() -> None:
    labels = AnswerLabels.of("v|1", "personalized", None, "Nokia 3310")
    assert (labels.segment, labels.device) == ("none", "other")
    assert AnswerLabels.of("v", "popular", "s1", "mobile").device == "mobile"
    assert AnswerLabels.unpacked(labels.packed()) == labels  # a "|" in the version is kept


async def test_feedback_counts_once_per_item_under_the_answers_labels() -> None:
    store = InMemoryExposureStore()
    tracker = QualityTracker(store, timedelta(hours=1))
    labels = AnswerLabels.of("v-quality-test", "personalized", "s2", "tablet")
    before = {
        name: sample(name, labels)
        for name in (
            "recserve_quality_exposures_total",
            "recserve_quality_impressions_total",
            "recserve_quality_clicks_total",
            "recserve_quality_conversions_total",
        )
    }
    tracker.offer("r1", labels, ["a", "b"])
    await tracker.flush()
    await tracker.attribute(
        [
            event("impression", "a", "r1", 1),
            event("impression", "b", "r1", 2),
            event("click", "a", "r1", 3),
            event("click", "a", "r1", 4),  # the same pair again: not counted twice
            event("purchase", "a", "r1", 5),
            event("click", "z", "r1", 6),  # not shown: not counted
            event("click", "a", "unknown", 7),  # not recorded: not counted
        ]
    )

    def grew(name: str) -> float:
        return sample(name, labels) - before[name]

    assert grew("recserve_quality_exposures_total") == 1
    assert grew("recserve_quality_impressions_total") == 2
    assert grew("recserve_quality_clicks_total") == 1
    assert grew("recserve_quality_conversions_total") == 1
    totals = await tracker.totals()
    assert totals[labels].exposures == 1
    assert (totals[labels].impressions, totals[labels].clicks) == (2, 1)
    # Stored under its own key: an experiment exposure with the same id stays distinct.
    assert await store.find_exposure("r1") is None
    assert await store.exposures_of("key-u1") == []  # anonymous: no user's data


async def test_a_full_queue_drops_the_answer_and_counts_it() -> None:
    tracker = QualityTracker(InMemoryExposureStore(), timedelta(hours=1), queue_size=1)
    labels = AnswerLabels.of("v-queue-test", "popular", None, None)
    dropped = REGISTRY.get_sample_value("recserve_quality_dropped_total", {"reason": "queue_full"})
    tracker.offer("r1", labels, ["a"])
    tracker.offer("r2", labels, ["a"])
    after = REGISTRY.get_sample_value("recserve_quality_dropped_total", {"reason": "queue_full"})
    assert (after or 0) - (dropped or 0) == 1
    await tracker.close()


async def test_a_sample_of_the_answers_is_recorded_with_its_feedback_alone() -> None:
    store = InMemoryExposureStore()
    tracker = QualityTracker(store, timedelta(hours=1), sample_share=0.25)
    labels = AnswerLabels.of("v-sample-test", "personalized", None, None)
    ids = [f"rec-{n}" for n in range(4000)]
    sampled = [i for i in ids if tracker.sampled(i)]
    assert 850 < len(sampled) < 1150  # a quarter, give or take the hash's spread
    # Every worker draws the same answers.
    other = QualityTracker(InMemoryExposureStore(), timedelta(hours=1), sample_share=0.25)
    assert [i for i in ids if other.sampled(i)] == sampled
    left_out = next(i for i in ids if not tracker.sampled(i))
    for recommendation_id in (sampled[0], left_out):
        tracker.offer(recommendation_id, labels, ["a"])
    await tracker.flush()
    await tracker.attribute([event("click", "a", sampled[0], 1), event("click", "a", left_out, 2)])
    totals = (await tracker.totals())[labels]
    assert (totals.exposures, totals.clicks) == (1, 1)
