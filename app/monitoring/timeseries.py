"""The console's charts over time: a ring buffer of counter totals sampled every few seconds.

Each worker samples the same exposition ``/metrics`` serves, which with several workers is the
sum over all of them (``PROMETHEUS_MULTIPROC_DIR``), so whichever worker answers ``/ui`` draws
the whole service's series from its own buffer: no shared store, nothing on the request path,
and a restart only loses the chart's past (Prometheus keeps the long history). Computing the
series from the event log instead would cover answers and cache lookups, which it never sees.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from app.observability import metrics

POINTS = 360  # an hour at the default 10 s
RATE_SPAN = 6  # samples a point's rate or ratio spans: a minute at the default 10 s

Series = dict[str, list[tuple[float, float]]]


def current_samples() -> list[Sample]:
    """Every sample of the exposition ``/metrics`` serves (aggregated across workers)."""
    payload, _ = metrics.render_latest()
    return [
        sample
        for family in text_string_to_metric_families(payload.decode())
        for sample in family.samples
    ]


def totals_by(samples: list[Sample], name: str, label: str, **match: str) -> dict[str, float]:
    """The sum of ``name``'s samples per value of ``label``, among those matching ``match``."""
    found: dict[str, float] = {}
    for s in samples:
        if s.name == name and label in s.labels and match.items() <= s.labels.items():
            found[s.labels[label]] = found.get(s.labels[label], 0.0) + s.value
    return found


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    answers: dict[str, float]  # /recommend answers by source
    cache_hits: dict[str, float]  # by tier
    cache_misses: dict[str, float]
    impressions: dict[str, float]  # attributed, by model version
    clicks: dict[str, float]
    conversions: dict[str, float]


def snapshot(at: float) -> Snapshot:
    samples = current_samples()
    lookups = "recserve_cache_lookups_total"
    return Snapshot(
        at,
        totals_by(samples, "recserve_api_request_seconds_count", "source", endpoint="/recommend"),
        totals_by(samples, lookups, "tier", result="hit"),
        totals_by(samples, lookups, "tier", result="miss"),
        totals_by(samples, "recserve_quality_impressions_total", "model_version"),
        totals_by(samples, "recserve_quality_clicks_total", "model_version"),
        totals_by(samples, "recserve_quality_conversions_total", "model_version"),
    )


class MetricHistory:
    """The last ``points`` snapshots, and the console's series derived from them."""

    def __init__(self, points: int = POINTS, take: Callable[[float], Snapshot] = snapshot) -> None:
        self._snapshots: deque[Snapshot] = deque(maxlen=points)
        self._take = take

    def sample(self, at: float | None = None) -> None:
        self._snapshots.append(self._take(time.time() if at is None else at))

    async def run(self, interval_seconds: float) -> None:
        """Sample every ``interval_seconds`` until cancelled (parsing runs off the loop)."""
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(interval_seconds)

    def answers_by_source(self) -> Series:
        """Answers per second by source."""
        return self._series(lambda a, b, key: _rate(a.answers, b.answers, key, b.at - a.at))

    def cache_hit_ratio(self) -> Series:
        """Hits / lookups per tier."""
        return self._series(
            lambda a, b, key: _ratio(
                _delta(a.cache_hits, b.cache_hits, key),
                _delta(a.cache_hits, b.cache_hits, key)
                + _delta(a.cache_misses, b.cache_misses, key),
            ),
            keys=lambda s: s.cache_hits.keys() | s.cache_misses.keys(),
        )

    def ctr(self) -> Series:
        """Attributed clicks / impressions per model version."""
        return self._series(
            lambda a, b, key: _ratio(
                _delta(a.clicks, b.clicks, key), _delta(a.impressions, b.impressions, key)
            ),
            keys=lambda s: s.impressions.keys(),
        )

    def conversion_rate(self) -> Series:
        """Attributed conversions / impressions per model version."""
        return self._series(
            lambda a, b, key: _ratio(
                _delta(a.conversions, b.conversions, key),
                _delta(a.impressions, b.impressions, key),
            ),
            keys=lambda s: s.impressions.keys(),
        )

    def _series(
        self,
        point: Callable[[Snapshot, Snapshot, str], float | None],
        keys: Callable[[Snapshot], Iterable[str]] = lambda s: s.answers.keys(),
    ) -> Series:
        """Per key, ``point(earlier, later, key)`` over ``RATE_SPAN`` samples, at ``later``."""
        snaps = list(self._snapshots)
        series: Series = {}
        for i in range(1, len(snaps)):
            earlier, later = snaps[max(0, i - RATE_SPAN)], snaps[i]
            for key in sorted(keys(later)):
                value = point(earlier, later, key)
                if value is not None:
                    series.setdefault(key, []).append((later.at, value))
        return series


def _delta(before: dict[str, float], after: dict[str, float], key: str) -> float:
    # A counter lower than before: a worker restarted; its new count is the increase.
    now, then = after.get(key, 0.0), before.get(key, 0.0)
    return now - then if now >= then else now


def _rate(before: dict[str, float], after: dict[str, float], key: str, seconds: float) -> float:
    return _delta(before, after, key) / seconds if seconds > 0 else 0.0


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None
