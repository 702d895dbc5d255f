"""Clients built once in the app's lifespan and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from app.monitoring.runtime import Monitoring
from app.privacy.erasure import UserDataService
from app.rollout.store import RolloutStore
from app.serving.experiments.rollout import ChallengerServing
from app.serving.experiments.service import ExperimentService
from app.serving.realtime.event_ingest import EventIngestor
from app.serving.recommend.engine import RecommendationEngine
from app.serving.recommend.model_reload import ModelReloader
from app.serving.surfaces.served_lists import ServedLists
from app.settings import Settings
from app.webhooks.runtime import Webhooks


@dataclass
class Services:
    settings: Settings
    engine: RecommendationEngine
    events: EventIngestor
    # The experiments, their exposures, attribution and reports.
    experiments: ExperimentService
    # Lists served under the user's variant (/recommend, content blocks, the console): the
    # assignment, the variant's strategy, the exposure and the explanation in one place.
    served: ServedLists
    # Swaps in a newly published model after checking it (POST /admin/models/reload, poll).
    reloader: ModelReloader
    # Consent, erasure and export of a user's data (/users/{user_id} routes).
    user_data: UserDataService
    # CRM webhooks: the outbox the event path enqueues into, the background delivery worker.
    webhooks: Webhooks
    # The guarded rollout: this worker's challenger, and the record of rollouts and changes.
    challenger: ChallengerServing
    rollout_store: RolloutStore
    # Online quality, drift and the console's charts; ``served`` feeds it every answer.
    monitoring: Monitoring
