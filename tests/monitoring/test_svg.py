"""The console's inline charts: escaped text, one shape per data point."""

from __future__ import annotations

import re

from app.monitoring.svg import Interval, histogram_pair, interval_chart, line_chart

HOSTILE = '<script>alert("x")</script>'


def test_every_text_is_escaped() -> None:
    charts = [
        line_chart({HOSTILE: [(0.0, 1.0), (10.0, 2.0)]}, HOSTILE),
        histogram_pair([HOSTILE], [0.5], [0.4], HOSTILE),
        interval_chart([Interval(HOSTILE, 0.1, 0.05, 0.2)], HOSTILE),
    ]
    for chart in charts:
        assert "<script>" not in chart
        assert "&lt;script&gt;" in chart


def test_line_chart_draws_one_polyline_per_series_scaled_to_the_frame() -> None:
    chart = line_chart({"a": [(0.0, 0.0), (60.0, 4.0)], "b": [(0.0, 2.0), (60.0, 1.0)]}, "t")
    lines = re.findall(r'data-name="(\w)" points="([^"]+)"', chart)
    assert [name for name, _ in lines] == ["a", "b"]
    a_points = [tuple(map(float, p.split(","))) for p in lines[0][1].split()]
    assert a_points[0][1] > a_points[1][1]  # larger values higher up (smaller y)
    assert "no samples yet" in line_chart({}, "empty")


def test_histogram_pair_draws_a_reference_and_a_live_bar_per_bin() -> None:
    chart = histogram_pair(["x", "y", "z"], [0.2, 0.3, 0.5], [0.5, 0.3, 0.2], "t")
    assert chart.count('<rect class="reference"') == 3
    assert chart.count('<rect class="live"') == 3
    assert "z live: 20.0%" in chart
