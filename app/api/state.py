"""Clients built once in the app's lifespan and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from app.privacy.erasure import UserDataService
from app.serving.experiments.service import ExperimentService
from app.serving.experiments.strategies import StrategyRecommender
from app.serving.realtime.event_ingest import EventIngestor
from app.serving.recommend.engine import RecommendationEngine
from app.serving.recommend.model_reload import ModelReloader
from app.serving.surfaces.content_blocks import ContentBlocks
from app.settings import Settings
from app.webhooks.runtime import Webhooks


@dataclass
class Services:
    settings: Settings
    engine: RecommendationEngine
    events: EventIngestor
    # Assign a request, record its exposure, attribute feedback: any surface (see the module).
    experiments: ExperimentService
    # The engine behind each experiment variant's strategy; no assignment = the engine itself.
    recommender: StrategyRecommender
    # Swaps in a newly published model after checking it (POST /admin/models/reload, poll).
    reloader: ModelReloader
    # Consent, erasure and export of a user's data (/users/{user_id} routes).
    user_data: UserDataService
    # The CMS content slots (/content-blocks).
    content_blocks: ContentBlocks
    # CRM webhooks: the outbox the event path enqueues into, the background delivery worker.
    webhooks: Webhooks
