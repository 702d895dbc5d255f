"""The FastAPI app factory. Clients are built in the lifespan, never at import."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api.auth import (
    ADMIN_ACCESS,
    DOCS_ACCESS,
    EVENTS_ACCESS,
    RECOMMEND_ACCESS,
    Access,
    build_authenticator,
)
from app.api.body_limit import BodyLimitMiddleware
from app.api.docs_pages import mount_docs_assets
from app.api.errors import install_error_handlers
from app.api.fast_recommend import RecserveAPI
from app.api.middleware import TRACE_HEADERS, RequestMetricsMiddleware, TraceContextMiddleware
from app.api.routers import (
    admin,
    availability,
    content_blocks,
    docs,
    events,
    experiments,
    feedback,
    health,
    item_details,
    items,
    privacy,
    profiles,
    recommend,
    rollout,
    ui,
    ui_monitoring,
    webhooks,
)
from app.api.state import Services
from app.api.user_tokens import USER_TOKEN_HEADER
from app.bootstrap import (
    build_challenger,
    build_content_blocks,
    build_engine,
    build_event_ingest,
    build_experiments,
    build_monitor,
    build_user_data,
    close_engine,
    migrate_database,
    start_rollout_job,
    user_pseudonyms,
)
from app.monitoring.drift_job import DriftJob
from app.monitoring.runtime import Monitoring
from app.monitoring.timeseries import MetricHistory
from app.serving.dependency_probe import watch_dependencies
from app.serving.health import check_dependencies
from app.serving.realtime.lag_monitor import watch_event_log_lag
from app.serving.recommend.model_reload import ModelReloader
from app.serving.surfaces.served_lists import ServedLists
from app.settings import Settings
from app.webhooks.runtime import start_webhooks

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Low-latency personalised recommendations. Features come from a Feast online store "
    "(SQLite embedded, Redis in production), scores from an ONNX hybrid model run by "
    "onnxruntime, with an in-process and a shared Redis cache tier in front."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; ``settings`` default to the environment (``RECSERVE_*``)."""
    resolved = settings if settings is not None else Settings()
    # Read here, not in the lifespan: a bad key set-up stops the app before it serves anything.
    authenticator = build_authenticator(resolved.auth)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(migrate_database, resolved)  # before any store is used
        engine = await build_engine(resolved)
        experiments, recommender = build_experiments(resolved, engine)
        blocks = build_content_blocks(resolved, engine, recommender)  # slots file checked here
        reloader = ModelReloader(engine, resolved.model_root)
        # Endpoints checked here; worker task started.
        webhooks = start_webhooks(resolved, user_pseudonyms(resolved, engine))
        monitor = build_monitor(resolved)
        quality = monitor.quality
        ingest = build_event_ingest(
            resolved,
            engine,
            listeners=[
                experiments.attribute,
                webhooks.publisher.publish_events,
                *([] if quality is None else [quality.attribute]),
            ],
        )
        user_data = build_user_data(resolved, engine, ingest, experiments, webhooks.outbox)
        challenger = build_challenger(resolved, engine, experiments, recommender)
        await challenger.refresh()  # a rollout under way serves from the first request
        rollout_store, rollout_job = start_rollout_job(
            resolved, experiments, ingest.event_log, webhooks.publisher, challenger
        )
        monitoring = Monitoring(
            monitor,
            DriftJob(
                ingest.event_log,
                lambda: resolved.model_root / engine.model.version,
                monitor.reservoir,
            ),
            MetricHistory(),
        )
        monitoring.start(resolved)
        app.state.services = Services(
            settings=resolved,
            engine=engine,
            events=ingest,
            experiments=experiments,
            served=ServedLists(engine, experiments, recommender, blocks, monitor),
            reloader=reloader,
            user_data=user_data,
            webhooks=webhooks,
            challenger=challenger,
            rollout_store=rollout_store,
            monitoring=monitoring,
        )
        log.info("serving model %s", engine.model.version)
        polls = (
            [
                asyncio.create_task(reloader.poll(resolved.model_poll_seconds)),
                asyncio.create_task(challenger.poll(resolved.model_poll_seconds)),
            ]
            if resolved.model_poll_seconds > 0
            else []
        )
        lag_watch = asyncio.create_task(
            watch_event_log_lag(ingest.event_log, resolved.events.lag_sample_seconds)
        )
        # Checked once before serving, so the first scrape already has every dependency.
        await check_dependencies(engine, ingest.event_log, reloader, ingest.write_failures)
        dependency_watch = asyncio.create_task(
            watch_dependencies(
                engine,
                ingest.event_log,
                reloader,
                lambda: ingest.write_failures,
                resolved.dependency_probe_seconds,
            )
        )
        # Everything built so far (Feast, pyarrow, the model, the catalogue) lives as long as
        # the process. Frozen, it is left out of every later full collection: walking it made
        # each one a 100+ ms pause, the worst tail of /events and /recommend under load.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # what this app built may be collected once it is gone (tests)
            lag_watch.cancel()
            dependency_watch.cancel()
            rollout_job.cancel()
            await monitoring.stop()
            for poll in polls:
                poll.cancel()
            user_data.close()
            await ingest.close()
            await webhooks.close()  # after ingest: no request enqueues any more
            await experiments.close()
            await close_engine(engine)

    # A well-formed GET /recommend skips FastAPI's middleware stack, routing and parameter
    # solving (app/api/fast_recommend.py).
    app = RecserveAPI(
        recommend_access=Access.RECOMMEND,
        title="recserve",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by the ``docs`` router behind its access group instead (closed by default).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # A redirect to the path with(out) its slash came before the key check and built its
        # Location from the request's Host header: unknown paths are 404 instead.
        redirect_slashes=False,
        # The service has its own trace context and Prometheus metrics; FastAPI's native
        # OpenTelemetry hooks would look up the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.authenticator = authenticator
    install_error_handlers(app)
    mount_docs_assets(app)
    # 413 on Content-Length or streamed bytes, in the JSON error shape and with request ids.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=resolved.api.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware)
    if resolved.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=resolved.api.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=[
                "Authorization",
                "X-API-Key",
                USER_TOKEN_HEADER,
                "Content-Type",
                *TRACE_HEADERS,
            ],
            expose_headers=list(TRACE_HEADERS),
            max_age=600,
        )
    # Last, so outermost: every response (CORS preflights and 500s included) carries the ids.
    app.add_middleware(TraceContextMiddleware)
    # Access per router (app/api/auth.py); /healthz and /readyz are always open.
    app.include_router(recommend.router, dependencies=[RECOMMEND_ACCESS])
    app.include_router(events.router, dependencies=[EVENTS_ACCESS])
    app.include_router(feedback.router, dependencies=[EVENTS_ACCESS])
    app.include_router(health.router)
    app.include_router(docs.router, dependencies=[DOCS_ACCESS])
    app.include_router(items.router, dependencies=[RECOMMEND_ACCESS])
    app.include_router(content_blocks.router, dependencies=[RECOMMEND_ACCESS])
    app.include_router(availability.router, dependencies=[ADMIN_ACCESS])
    app.include_router(item_details.router, dependencies=[RECOMMEND_ACCESS])  # after /items/*
    app.include_router(profiles.router, dependencies=[ADMIN_ACCESS])
    app.include_router(experiments.router, dependencies=[ADMIN_ACCESS])
    app.include_router(admin.router, dependencies=[ADMIN_ACCESS])
    app.include_router(privacy.router, dependencies=[ADMIN_ACCESS])
    app.include_router(ui.router, dependencies=[ADMIN_ACCESS])
    app.include_router(ui_monitoring.router, dependencies=[ADMIN_ACCESS])
    app.include_router(webhooks.router, dependencies=[ADMIN_ACCESS])
    app.include_router(rollout.router, dependencies=[ADMIN_ACCESS])
    app.include_router(rollout.console, dependencies=[ADMIN_ACCESS])
    return app
