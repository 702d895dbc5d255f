"""``/ui``: the operator console, server-rendered HTML (Jinja2, autoescaped), no JavaScript.

Pages read the same services the JSON API uses, in-process: a user lookup (profile, consent,
recent history, recommendations with explanations), model versions with their offline
metrics, cache and fallback health, and the experiments with their reports. Nothing here
changes state: the console's recommendations skip the cache and record no exposure.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from app.api.deps import (
    EngineDep,
    EventsDep,
    ExperimentsDep,
    ReloaderDep,
    ServedListsDep,
    SettingsDep,
    UserDataDep,
)
from app.api.routers.profiles import profile_of
from app.api.ui import panels
from app.experiments.assignment import is_running
from app.experiments.attribution import ExposureStoreUnavailable
from app.experiments.report import ExperimentReport
from app.experiments.stats import proportion_interval
from app.features.client import FeatureStoreError
from app.monitoring import svg
from app.privacy.consent import ConsentUnavailable
from app.privacy.erasure import UserDataService
from app.serving.health import check_dependencies
from app.serving.recommend.engine import RecommendationEngine
from app.serving.surfaces.served_lists import ServedLists
from app.serving.types import RecommendRequest

router = APIRouter(prefix="/ui", tags=["operator console"], include_in_schema=False)

NAV = (
    ("/ui", "Overview"),
    ("/ui/users", "Users"),
    ("/ui/models", "Models"),
    ("/ui/experiments", "Experiments"),
    ("/ui/rollout", "Rollout"),
    ("/ui/monitoring", "Monitoring"),
    ("/ui/drift", "Drift"),
)
_templates = Environment(
    loader=PackageLoader("app.api.ui"),
    autoescape=True,  # every id, token and detail shown comes from data or requests
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def page(
    template: str, title: str, active: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    html = _templates.get_template(template).render(
        title=title,
        nav=NAV,
        active=active,
        percent=_percent,
        metric_label=panels.metric_label,
        number=panels.number,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


@router.get("", response_class=HTMLResponse, summary="Console: serving overview")
async def overview(
    settings: SettingsDep, engine: EngineDep, events: EventsDep, reloader: ReloaderDep
) -> HTMLResponse:
    dependencies = await check_dependencies(engine, events.event_log, reloader)
    return page(
        "overview.html",
        "Overview",
        "/ui",
        model=engine.model,
        dependencies=dependencies,
        health=await asyncio.to_thread(panels.serving_health),  # reads the metrics files
        cache_enabled=settings.cache.enabled,
    )


@router.get("/users", response_class=HTMLResponse, summary="Console: look up a user")
async def user_lookup(
    settings: SettingsDep,
    engine: EngineDep,
    user_data: UserDataDep,
    served: ServedListsDep,
    user_id: Annotated[str | None, Query(max_length=256)] = None,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> HTMLResponse:
    examples = await asyncio.to_thread(panels.example_user_ids, settings.data_dir)  # reads files
    if not user_id:
        return page("user.html", "Users", "/ui/users", user_id=None, k=k, examples=examples)
    found = await _user(engine, user_data, served, user_id, k)
    return page("user.html", f"User {user_id}", "/ui/users", examples=examples, **found)


async def _user(
    engine: RecommendationEngine,
    user_data: UserDataService,
    served: ServedLists,
    user_id: str,
    k: int,
) -> dict[str, Any]:
    profile, profile_error = None, None
    try:
        features = await asyncio.to_thread(engine.features.get_user, user_id)
        profile = None if features is None else profile_of(features)
    except FeatureStoreError as exc:
        profile_error = f"feature store unavailable: {exc}"
    consent, consent_error = None, None
    try:
        resolved, record = await user_data.consent.current(user_id)
        chosen = record.choices if record is not None else {}
        consent = [(p.value, granted, p.value not in chosen) for p, granted in resolved.items()]
    except ConsentUnavailable as exc:
        consent_error = f"consent store unavailable: {exc}"
    preview = await served.preview(RecommendRequest(user_id=user_id, k=k, use_cache=False))
    explained = preview.explained
    shown = [i.item_id for i in preview.recommendation.items]
    shown += [h.item_id for e in explained.items for h in e.because_you_viewed]
    shown += profile.behaviour.recent_items if profile is not None else []
    return {
        "user_id": user_id,
        "k": k,
        "titles": {item_id: _title(engine, item_id) for item_id in shown},
        "profile": profile,
        "profile_error": profile_error,
        "consent": consent,
        "consent_error": consent_error,
        "assignment": preview.assignment,
        "rec": preview.recommendation,
        "explained": explained,
        "explanations": {e.item_id: e for e in explained.items},
    }


def _title(engine: RecommendationEngine, item_id: str) -> str:
    """The catalogue title, or "" when the catalogue has none but the id."""
    rules = engine.rules
    title = rules.display(item_id).title if rules is not None else item_id
    return "" if title == item_id else title


@router.get("/models", response_class=HTMLResponse, summary="Console: model versions")
async def models(settings: SettingsDep, engine: EngineDep) -> HTMLResponse:
    # Both read files: off the event loop.
    rows = await asyncio.to_thread(panels.model_versions, settings.model_root, engine.model.version)
    evaluation = await asyncio.to_thread(panels.evaluation_report, settings.home)
    return page(
        "models.html",
        "Model versions",
        "/ui/models",
        model_root=settings.model_root,
        rows=rows,
        metric_names=panels.offline_metric_names(rows),
        evaluation=evaluation,
        evaluation_metrics=panels.EVALUATION_METRICS,
    )


@router.get("/experiments", response_class=HTMLResponse, summary="Console: experiments")
async def experiments(experiment_service: ExperimentsDep) -> HTMLResponse:
    now = datetime.now(UTC)
    return page(
        "experiments.html",
        "Experiments",
        "/ui/experiments",
        experiments=experiment_service.experiments,
        is_running=lambda experiment: is_running(experiment, now),
    )


@router.get(
    "/experiments/{experiment_id}", response_class=HTMLResponse, summary="Console: a report"
)
async def experiment(experiment_id: str, experiment_service: ExperimentsDep) -> HTMLResponse:
    title = f"Experiment {experiment_id}"
    try:
        report = await experiment_service.report(experiment_id)
    except ExposureStoreUnavailable as exc:
        error = f"exposure store unavailable: {exc}"
        return page(
            "experiment.html", title, "/ui/experiments", 503, report=None, error=error, chart=None
        )
    if report is None:
        error = f"unknown experiment {experiment_id!r}"
        return page(
            "experiment.html", title, "/ui/experiments", 404, report=None, error=error, chart=None
        )
    chart = Markup(svg.interval_chart(_ctr_intervals(report), "CTR per variant, 95% interval"))
    return page("experiment.html", title, "/ui/experiments", report=report, error=None, chart=chart)


def _ctr_intervals(report: ExperimentReport) -> list[svg.Interval]:
    """Each variant's CTR with its Wilson interval (variants without impressions left out)."""
    found = []
    for variant in report.variants:
        interval = proportion_interval(variant.clicks, variant.impressions)
        if interval is not None:
            ctr = variant.clicks / variant.impressions
            found.append(svg.Interval(variant.name, ctr, *interval))
    return found
