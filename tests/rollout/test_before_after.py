"""The before/after report: rates at the same segment mix, with intervals, from logged events."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.events.types import Event
from app.rollout.before_after import UNKNOWN_SEGMENT, Tally, build_report, read_segments, tally


def _events(user: str, impressions: int, clicks: int, conversions: int = 0) -> list[Event]:
    def event(n: int, kind: str) -> Event:
        context = {"recommendation_id": f"rec-{user}-{n}"}
        return Event(f"{user}-{kind}-{n}", user, f"item-{n}", kind, 1.0, None, context)  # type: ignore[arg-type]

    return (
        [event(n, "impression") for n in range(impressions)]
        + [event(n, "click") for n in range(clicks)]
        + [event(n, "purchase") for n in range(conversions)]
    )


def test_events_are_tallied_per_segment_and_only_when_they_follow_a_recommendation() -> None:
    events = _events("a", 10, 2, 1) + _events("b", 4, 1) + _events("stranger", 3, 0)
    events.append(Event("organic", "a", "item-x", "click", 1.0))  # no recommendation id
    tallies = tally(events, {"a": "loyal", "b": "loyal"})
    assert tallies == {"loyal": Tally(14, 3, 1), UNKNOWN_SEGMENT: Tally(3, 0, 0)}


def test_a_shift_in_the_segment_mix_alone_is_no_change() -> None:
    # Same CTR per segment before and after (20% and 5%); the mix swings from loyal to new.
    before = {"loyal": Tally(8000, 1600, 0), "new": Tally(2000, 100, 0)}
    after = {"loyal": Tally(2000, 400, 0), "new": Tally(8000, 400, 0)}
    report = build_report(before, after, at=1000.0, window_seconds=100.0)
    assert report.before.raw_ctr == pytest.approx(0.17)
    assert report.after.raw_ctr == pytest.approx(0.08)
    difference = report.ctr_difference
    assert difference is not None
    assert difference.after_minus_before == pytest.approx(0.0, abs=1e-12)
    assert not difference.significant
    assert report.before.ctr.value == pytest.approx(0.5 * 0.2 + 0.5 * 0.05)
    assert report.conversion_difference is not None
    assert (report.before.start, report.before.end, report.after.end) == (900.0, 1000.0, 1100.0)


def test_a_real_drop_is_significant_and_one_sided_segments_are_left_out() -> None:
    before = {"loyal": Tally(5000, 1000, 50), "new": Tally(5000, 250, 10)}
    after = {"loyal": Tally(5000, 700, 50), "new": Tally(5000, 250, 10), "fresh": Tally(40, 9, 0)}
    report = build_report(before, after, at=0.0, window_seconds=60.0)
    difference = report.ctr_difference
    assert difference is not None
    assert difference.significant
    assert difference.ci_low < difference.after_minus_before == pytest.approx(-0.03)
    assert difference.ci_high < 0
    assert report.left_out_impressions == 40
    assert {row.segment: row.weight for row in report.segments} == {
        "fresh": 0.0,
        "loyal": 0.5,
        "new": 0.5,
    }


def test_no_comparison_without_impressions_on_both_sides() -> None:
    report = build_report({}, {"loyal": Tally(10, 1, 0)}, at=0.0, window_seconds=60.0)
    assert report.ctr_difference is None
    assert report.before.ctr.value is None
    assert report.left_out_impressions == 10


def test_segments_come_from_the_user_segments_table(tmp_path: Path) -> None:
    assert read_segments(tmp_path) == {}
    pd.DataFrame({"user_id": ["u1", "u2"], "segment": ["loyal", "new"]}).to_parquet(
        tmp_path / "user_segments.parquet"
    )
    assert read_segments(tmp_path) == {"u1": "loyal", "u2": "new"}
