"""The PSI and the binning both sides of the drift comparison share."""

from __future__ import annotations

import math

import pytest

from app.monitoring.drift import (
    ACTIVITY_LABELS,
    Binner,
    Histogram,
    SampledAnswer,
    WindowEvent,
    activity_label,
    compare,
    popularity_bands,
    psi,
    score_edges,
)


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0
    small, large = psi([0.5, 0.5], [0.55, 0.45]), psi([0.5, 0.5], [0.9, 0.1])
    assert 0 < small < 0.25 < large
    # By hand: (0.9-0.5)·ln(0.9/0.5) + (0.1-0.5)·ln(0.1/0.5)
    assert large == pytest.approx(0.4 * math.log(1.8) - 0.4 * math.log(0.2))


def test_psi_floors_an_empty_bin_instead_of_dividing_by_zero() -> None:
    assert math.isfinite(psi([1.0, 0.0], [0.5, 0.5]))
    with pytest.raises(ValueError, match="bins"):
        psi([1.0], [0.5, 0.5])


def test_activity_bins_cover_every_count_once() -> None:
    assert ACTIVITY_LABELS == ("1", "2", "3-4", "5-8", "9-16", "17-32", "33+")
    assert [activity_label(n) for n in (1, 2, 3, 4, 5, 16, 17, 33, 500)] == [
        "1", "2", "3-4", "3-4", "5-8", "9-16", "17-32", "33+", "33+",
    ]  # fmt: skip


def test_popularity_bands_and_score_deciles_split_as_documented() -> None:
    ranking = [f"i{n}" for n in range(200)]
    bands = popularity_bands(ranking)
    assert [len(band) for band in bands] == [2, 8, 30]  # top 1%, 1-5%, 5-20% of 200
    assert bands[0] == ["i0", "i1"]
    edges = score_edges([float(n) for n in range(100)])
    assert edges == [float(n) for n in range(10, 100, 10)]


def test_binner_labels_unknown_items_other_categories_and_fallbacks() -> None:
    binner = Binner([["hot"], [], []], ["shoes"], [0.5], {"hot": "shoes", "cold": "hats"}.get)
    events = [WindowEvent("a", "hot"), WindowEvent("a", "cold"), WindowEvent("b", "new")]
    found = binner.event_histograms(events, {"hot", "cold"}.__contains__)
    assert found["item_popularity"].shares == pytest.approx([1 / 3, 0, 0, 1 / 3, 1 / 3])
    assert found["unknown_items"].shares == pytest.approx([2 / 3, 1 / 3])
    assert found["item_category"].labels == ["shoes", "other", "none"]
    assert found["item_category"].shares == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert found["user_activity"].observations == 2  # users, not events
    answers = [
        SampledAnswer(0.9, fallback=False, unknown_user=False),
        SampledAnswer(0.1, fallback=False, unknown_user=False),
        SampledAnswer(None, fallback=True, unknown_user=True),
    ]
    scored = binner.answer_histograms(answers)
    assert scored["score"].shares == [0.5, 0.5]  # the fallback's list has no model score
    assert scored["fallback"].shares == pytest.approx([2 / 3, 1 / 3])


def test_compare_withholds_a_verdict_on_too_few_observations_or_a_short_window() -> None:
    reference = {
        "item_popularity": Histogram(labels=["a", "b"], shares=[0.5, 0.5], observations=10),
        "user_activity": Histogram(labels=["a", "b"], shares=[0.5, 0.5], observations=10),
        "score": Histogram(labels=["a", "b"], shares=[0.5, 0.5], observations=10),
    }
    live = {
        "item_popularity": Histogram(labels=["a", "b"], shares=[0.9, 0.1], observations=100),
        "user_activity": Histogram(labels=["a", "b"], shares=[0.9, 0.1], observations=100),
        "score": Histogram(labels=["a", "b"], shares=[0.9, 0.1], observations=10),
    }
    found = {
        f.feature: f.psi
        for f in compare(reference, live, min_events=50, min_answers=50, full_window=False)
    }
    assert found["item_popularity"] is not None
    assert found["item_popularity"] > 0.25
    assert found["user_activity"] is None
    assert found["score"] is None
    full = compare(reference, live, min_events=50, min_answers=5, full_window=True)
    assert all(f.psi is not None for f in full)
