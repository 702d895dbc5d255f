"""The FastAPI app factory. Clients are built in the lifespan, never at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.middleware import RequestMetricsMiddleware
from app.api.routers import events, health, items, recommend
from app.api.state import Services
from app.serving.bootstrap import build_engine, build_event_ingest, close_engine
from app.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Low-latency personalised recommendations. Features come from a Feast online store "
    "(SQLite embedded, Redis in production), scores from an ONNX hybrid model run by "
    "onnxruntime, with an in-process and a shared Redis cache tier in front."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; ``settings`` default to the environment (``RECSERVE_*``)."""
    resolved = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await build_engine(resolved)
        ingest = build_event_ingest(resolved, engine)
        app.state.services = Services(settings=resolved, engine=engine, events=ingest)
        log.info("serving model %s", engine.model.version)
        try:
            yield
        finally:
            await ingest.close()
            await close_engine(engine)

    app = FastAPI(title="recserve", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.add_middleware(RequestMetricsMiddleware)
    app.include_router(recommend.router)
    app.include_router(events.router)
    app.include_router(health.router)
    app.include_router(items.router)
    return app
