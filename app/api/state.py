"""Clients built once in the app's lifespan and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from app.serving.engine import RecommendationEngine
from app.serving.event_ingest import EventIngestor
from app.settings import Settings


@dataclass
class Services:
    settings: Settings
    engine: RecommendationEngine
    events: EventIngestor
