"""The console's history: rates and ratios over the sampled counters."""

from __future__ import annotations

import pytest

from app.monitoring.timeseries import RATE_SPAN, MetricHistory, Snapshot


def fake(at: float) -> Snapshot:
    """Ten answers a second; hits a third of lookups; 5% CTR then 10% after t=100."""
    n = at / 10
    clicks = 5 * n if at <= 100 else 50 + 10 * (n - 10)
    return Snapshot(
        at,
        answers={"personalized": 100 * n},
        cache_hits={"local": 10 * n},
        cache_misses={"local": 20 * n},
        impressions={"v1": 100 * n},
        clicks={"v1": clicks},
        conversions={"v1": n},
    )


def test_series_are_rates_and_ratios_over_the_last_span() -> None:
    history = MetricHistory(points=50, take=fake)
    for step in range(25):
        history.sample(at=10.0 * step)
    answers = history.answers_by_source()["personalized"]
    assert answers[-1][1] == pytest.approx(10.0)
    assert history.cache_hit_ratio()["local"][-1][1] == pytest.approx(1 / 3)
    ctr = dict(history.ctr()["v1"])
    assert ctr[100.0] == pytest.approx(0.05)
    assert ctr[10.0 * (10 + RATE_SPAN)] == pytest.approx(0.10)  # the span past the change
    assert history.conversion_rate()["v1"][-1][1] == pytest.approx(0.01)


def test_a_counter_reset_counts_its_new_value_and_the_ring_is_bounded() -> None:
    values = iter([100.0, 200.0, 5.0])
    history = MetricHistory(
        points=2,
        take=lambda at: Snapshot(at, {"popular": next(values)}, {}, {}, {}, {}, {}),
    )
    for at in (0.0, 10.0, 20.0):
        history.sample(at=at)
    # Only the last two samples are kept; the drop to 5 is a restart that answered 5.
    assert history.answers_by_source()["popular"] == [(20.0, 0.5)]
