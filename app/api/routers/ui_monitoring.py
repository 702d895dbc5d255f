"""``/ui/monitoring`` and ``/ui/drift``: the console's online quality, serving charts and drift
pages, drawn as inline SVG on the server (``app.monitoring.svg``, which escapes every text it
draws, so its markup goes into the page as is)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from app.api.deps import MonitoringDep
from app.api.routers.ui import page
from app.events.types import EventLogUnavailable
from app.experiments.attribution import ExposureStoreUnavailable, VariantCounts
from app.experiments.stats import proportion_interval
from app.monitoring import svg
from app.monitoring.drift_job import ALERT_PSI, WATCH_PSI, status
from app.monitoring.quality import AnswerLabels

router = APIRouter(prefix="/ui", tags=["operator console"], include_in_schema=False)


@dataclass(frozen=True, slots=True)
class QualityRow:
    labels: AnswerLabels
    counts: VariantCounts
    ctr: tuple[float, float] | None  # Wilson 95% interval
    conversion: tuple[float, float] | None

    @property
    def ctr_value(self) -> float | None:
        c = self.counts
        return c.clicks / c.impressions if c.impressions else None

    @property
    def conversion_value(self) -> float | None:
        c = self.counts
        return c.conversions / c.impressions if c.impressions else None


def _percent_axis(value: float) -> str:
    return f"{100 * value:.1f}%"


@router.get("/monitoring", response_class=HTMLResponse, summary="Console: online quality")
async def monitoring_page(monitoring: MonitoringDep) -> HTMLResponse:
    history = monitoring.history
    charts = {
        "answers": svg.line_chart(history.answers_by_source(), "/recommend answers per second"),
        "cache": svg.line_chart(history.cache_hit_ratio(), "cache hit ratio", _percent_axis),
        "ctr": svg.line_chart(history.ctr(), "CTR by model version", _percent_axis),
        "conversion": svg.line_chart(
            history.conversion_rate(), "conversion rate by model version", _percent_axis
        ),
    }
    rows, error = [], None
    quality = monitoring.answers.quality
    if quality is not None:
        try:
            totals = await quality.totals()
        except ExposureStoreUnavailable as exc:
            error = f"exposure store unavailable: {exc}"
        else:
            rows = [
                QualityRow(
                    labels,
                    counts,
                    proportion_interval(counts.clicks, counts.impressions),
                    proportion_interval(counts.conversions, counts.impressions),
                )
                for labels, counts in sorted(totals.items(), key=lambda kv: kv[0].packed())
            ]
    return page(
        "monitoring.html",
        "Monitoring",
        "/ui/monitoring",
        charts={name: Markup(chart) for name, chart in charts.items()},
        rows=rows,
        quality_on=quality is not None,
        error=error,
    )


@router.get("/drift", response_class=HTMLResponse, summary="Console: drift")
async def drift_page(monitoring: MonitoringDep) -> HTMLResponse:
    try:
        report = monitoring.drift.last or await monitoring.drift.run_once()
    except EventLogUnavailable as exc:
        error = f"event log unavailable: {exc}"
        return page("drift.html", "Drift", "/ui/drift", 503, report=None, features=[], error=error)
    features = []
    for found in report.features if report is not None else ():
        chart = svg.histogram_pair(
            found.reference.labels, found.reference.shares, found.live.shares, found.feature
        )
        features.append((found, status(found.psi), Markup(chart)))
    return page(
        "drift.html",
        "Drift",
        "/ui/drift",
        report=report,
        features=features,
        watch=WATCH_PSI,
        alert=ALERT_PSI,
        error=None,
    )
