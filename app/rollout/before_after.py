"""The before/after report of a model change: engagement in the window before it against the
window after it, with the segment mix held fixed.

Engagement is what the event log holds of recommendations: impression, click, add-to-cart and
purchase events that carry ``context.recommendation_id`` (the events experiment attribution
reads), grouped by the user's segment (the ``user_segments`` table; ``unknown`` for users it
does not name). Rates are per impression: CTR = clicks / impressions, conversion =
(add-to-cart + purchase) / impressions.

A different mix of segments before and after would move the raw rates with no change in the
model, so both periods are reweighted to the same mix: each segment seen in both periods
weighs its share ``w_s`` of their pooled impressions, and a period's rate is ``Σ w_s r_s`` with
variance ``Σ w_s² r_s (1 - r_s) / n_s`` (direct standardisation). The 95% intervals are normal
approximations; the difference's adds both variances. Segments seen in one period only cannot
be compared and are reported as left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from app.events.types import Event
from app.features.schema import USER_JOIN_KEY, USER_SEGMENTS_VIEW

UNKNOWN_SEGMENT = "unknown"
Z_95 = 1.959964
_IMPRESSION = "impression"
_CLICK = "click"
_CONVERSIONS = frozenset({"add_to_cart", "purchase"})


@dataclass
class Tally:
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0


class Estimate(BaseModel):
    value: float | None = Field(description="Null without impressions in the compared segments.")
    standard_error: float | None
    ci_low: float | None = Field(description="Lower bound of the 95% interval.")
    ci_high: float | None = Field(description="Upper bound of the 95% interval.")


class Period(BaseModel):
    start: float = Field(description="Unix time, inclusive.")
    end: float = Field(description="Unix time, exclusive.")
    impressions: int
    clicks: int
    conversions: int
    ctr: Estimate = Field(description="Clicks per impression at the common segment mix.")
    conversion_rate: Estimate = Field(
        description="Conversions per impression at the common segment mix."
    )
    raw_ctr: float | None = Field(description="Clicks / impressions, not reweighted.")


class Difference(BaseModel):
    after_minus_before: float
    ci_low: float
    ci_high: float
    significant: bool = Field(description="The 95% interval excludes 0.")


class SegmentRow(BaseModel):
    segment: str
    weight: float = Field(description="Its share of the pooled impressions (0: left out).")
    before_impressions: int
    after_impressions: int
    before_ctr: float | None
    after_ctr: float | None


class BeforeAfterReport(BaseModel):
    window_seconds: float
    before: Period
    after: Period
    ctr_difference: Difference | None = Field(description="Null while a period lacks data.")
    conversion_difference: Difference | None
    segments: list[SegmentRow]
    left_out_impressions: int = Field(
        description="Impressions of segments seen in one period only (not compared)."
    )


def read_segments(offline_dir: Path) -> dict[str, str]:
    """User id -> segment from the ``user_segments`` table (empty before the first build)."""
    path = offline_dir / f"{USER_SEGMENTS_VIEW}.parquet"
    if not path.is_file():
        return {}
    table = pq.read_table(path, columns=[USER_JOIN_KEY, "segment"]).to_pydict()
    return {
        str(user): str(segment)
        for user, segment in zip(table[USER_JOIN_KEY], table["segment"], strict=True)
    }


def tally(events: Iterable[Event], segment_of: Mapping[str, str]) -> dict[str, Tally]:
    """Impressions, clicks and conversions of recommendations per segment."""
    tallies: dict[str, Tally] = {}
    for event in events:
        if not isinstance((event.context or {}).get("recommendation_id"), str):
            continue
        counts = tallies.setdefault(segment_of.get(event.user_id, UNKNOWN_SEGMENT), Tally())
        if event.type == _IMPRESSION:
            counts.impressions += 1
        elif event.type == _CLICK:
            counts.clicks += 1
        elif event.type in _CONVERSIONS:
            counts.conversions += 1
    return tallies


def build_report(
    before: Mapping[str, Tally],
    after: Mapping[str, Tally],
    *,
    at: float,
    window_seconds: float,
) -> BeforeAfterReport:
    """Compare the two periods' tallies at the pooled segment mix."""
    compared = sorted(
        s for s in set(before) & set(after) if before[s].impressions and after[s].impressions
    )
    pooled = {s: before[s].impressions + after[s].impressions for s in compared}
    total = sum(pooled.values())
    weights = {s: pooled[s] / total for s in compared} if total else {}
    left_out = sum(
        t.impressions for side in (before, after) for s, t in side.items() if s not in weights
    )
    periods = (
        _period(before, weights, at - window_seconds, at),
        _period(after, weights, at, at + window_seconds),
    )
    return BeforeAfterReport(
        window_seconds=window_seconds,
        before=periods[0],
        after=periods[1],
        ctr_difference=_difference(periods[0].ctr, periods[1].ctr),
        conversion_difference=_difference(periods[0].conversion_rate, periods[1].conversion_rate),
        segments=[
            SegmentRow(
                segment=s,
                weight=weights.get(s, 0.0),
                before_impressions=before.get(s, Tally()).impressions,
                after_impressions=after.get(s, Tally()).impressions,
                before_ctr=_rate(before.get(s, Tally()).clicks, before.get(s, Tally()).impressions),
                after_ctr=_rate(after.get(s, Tally()).clicks, after.get(s, Tally()).impressions),
            )
            for s in sorted(set(before) | set(after))
        ],
        left_out_impressions=left_out,
    )


def _period(
    tallies: Mapping[str, Tally], weights: Mapping[str, float], start: float, end: float
) -> Period:
    impressions = sum(t.impressions for t in tallies.values())
    clicks = sum(t.clicks for t in tallies.values())
    return Period(
        start=start,
        end=end,
        impressions=impressions,
        clicks=clicks,
        conversions=sum(t.conversions for t in tallies.values()),
        ctr=_standardised(
            {s: (tallies[s].clicks, tallies[s].impressions) for s in weights}, weights
        ),
        conversion_rate=_standardised(
            {s: (tallies[s].conversions, tallies[s].impressions) for s in weights}, weights
        ),
        raw_ctr=_rate(clicks, impressions),
    )


def _standardised(counts: Mapping[str, tuple[int, int]], weights: Mapping[str, float]) -> Estimate:
    if not weights:
        return Estimate(value=None, standard_error=None, ci_low=None, ci_high=None)
    value = variance = 0.0
    for segment, weight in weights.items():
        successes, impressions = counts[segment]
        rate = successes / impressions
        bounded = min(rate, 1.0)  # clients may send clicks without impressions
        value += weight * rate
        variance += weight**2 * bounded * (1 - bounded) / impressions
    se = math.sqrt(variance)
    return Estimate(
        value=value, standard_error=se, ci_low=value - Z_95 * se, ci_high=value + Z_95 * se
    )


def _difference(before: Estimate, after: Estimate) -> Difference | None:
    if before.value is None or after.value is None:
        return None
    difference = after.value - before.value
    half = Z_95 * math.hypot(before.standard_error or 0.0, after.standard_error or 0.0)
    return Difference(
        after_minus_before=difference,
        ci_low=difference - half,
        ci_high=difference + half,
        significant=abs(difference) > half,
    )


def _rate(successes: int, impressions: int) -> float | None:
    return successes / impressions if impressions else None
