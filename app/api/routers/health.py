"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.auth import METRICS_ACCESS
from app.api.deps import EngineDep, EventsDep, ReloaderDep
from app.api.responses import json_response
from app.api.schemas.health import ReadinessResponse
from app.observability import metrics
from app.serving.health import check_dependencies

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Liveness",
    description="200 while the process runs its event loop; checks nothing else.",
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadinessResponse,
    summary="Readiness, per dependency",
    description=(
        "Checks the model, the Feast online store, each cache tier and the event log and names "
        "what is down; `event_log_writes` and `profile_updates` are down while the latest "
        "append or profile update failed (a store that reads but refuses writes). "
        "Answers 200 while a model is loaded, because every request can still be served (with "
        "the popularity fallback if need be): taking all replicas out of a load balancer when a "
        "shared Redis fails would turn a degradation into an outage. `degraded` is true when "
        "any dependency is down; 503 only when no model can be served."
    ),
    responses={503: {"description": "No model loaded"}},
)
async def readyz(engine: EngineDep, events: EventsDep, reloader: ReloaderDep) -> Response:
    statuses = await check_dependencies(engine, events.event_log, reloader, events.write_failures)
    model_ok = statuses["model"].ok
    body = {
        "ready": model_ok,
        "degraded": not all(s.ok for s in statuses.values()),
        "model_version": engine.model.version if model_ok else None,
        "dependencies": {name: {"ok": s.ok, "detail": s.detail} for name, s in statuses.items()},
    }
    return json_response(body, status_code=200 if model_ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    include_in_schema=True,
    response_class=Response,
    description="Prometheus text exposition, aggregated across uvicorn workers. Open unless "
    "`RECSERVE_AUTH__OPEN_METRICS=false` (then an `admin` key is needed).",
    dependencies=[METRICS_ACCESS],
)
async def prometheus_metrics() -> Response:
    payload, content_type = metrics.render_latest()
    return Response(content=payload, media_type=content_type)
