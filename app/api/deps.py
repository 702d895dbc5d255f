"""One typed dependency per service, so a handler's signature names exactly what it uses.

The getters are async on purpose: FastAPI runs a sync dependency in a worker thread, which
cost more than the whole feature read on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.api.state import Services
from app.monitoring.runtime import Monitoring
from app.privacy.erasure import UserDataService
from app.serving.experiments.service import ExperimentService
from app.serving.realtime.event_ingest import EventIngestor
from app.serving.recommend.engine import RecommendationEngine
from app.serving.recommend.model_reload import ModelReloader
from app.serving.surfaces.served_lists import ServedLists
from app.settings import Settings
from app.webhooks.runtime import Webhooks


def services_of(request: Request) -> Services:
    """What the lifespan built for this app."""
    services: Services = request.app.state.services
    return services


async def get_settings(request: Request) -> Settings:
    return services_of(request).settings


async def get_engine(request: Request) -> RecommendationEngine:
    return services_of(request).engine


async def get_events(request: Request) -> EventIngestor:
    return services_of(request).events


async def get_experiments(request: Request) -> ExperimentService:
    return services_of(request).experiments


async def get_served(request: Request) -> ServedLists:
    return services_of(request).served


async def get_reloader(request: Request) -> ModelReloader:
    return services_of(request).reloader


async def get_user_data(request: Request) -> UserDataService:
    return services_of(request).user_data


async def get_webhooks(request: Request) -> Webhooks:
    return services_of(request).webhooks


async def get_monitoring(request: Request) -> Monitoring:
    return services_of(request).monitoring


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[RecommendationEngine, Depends(get_engine)]
EventsDep = Annotated[EventIngestor, Depends(get_events)]
ExperimentsDep = Annotated[ExperimentService, Depends(get_experiments)]
ServedListsDep = Annotated[ServedLists, Depends(get_served)]
ReloaderDep = Annotated[ModelReloader, Depends(get_reloader)]
UserDataDep = Annotated[UserDataService, Depends(get_user_data)]
WebhooksDep = Annotated[Webhooks, Depends(get_webhooks)]
MonitoringDep = Annotated[Monitoring, Depends(get_monitoring)]
