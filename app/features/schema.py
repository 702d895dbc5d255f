"""The contract between feature building, training and serving: Feast names and the typed
record serving reads.

``feature_repo/`` declares the same names for Feast; it cannot import this module (Feast
imports that folder on its own), so ``tests/features`` checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

USER_ENTITY = "user"
ITEM_ENTITY = "item"
USER_JOIN_KEY = "user_id"
ITEM_JOIN_KEY = "item_id"
EVENT_TIMESTAMP = "event_timestamp"

USER_ATTRIBUTES_VIEW = "user_attributes"
USER_BEHAVIOUR_VIEW = "user_behaviour"
ITEM_FEATURES_VIEW = "item_features"
USER_SEGMENTS_VIEW = "user_segments"
USER_BEHAVIOUR_PUSH_SOURCE = "user_behaviour_push"
RECOMMEND_FEATURE_SERVICE = "recommend_v1"

# Distinct items per user kept online, oldest -> newest by last interaction. Serving excludes
# all of them from results ("never recommend what the user already has"), so the cap is wide.
HISTORY_MAX_ITEMS = 2000
# The model reads only the newest of them: older items add little signal and cost a row
# gather each per request. The manifest records the value a model was trained with.
MODEL_HISTORY_ITEMS = 500

USER_ATTRIBUTE_FEATURES = ("attribute_tokens", "attributes_json")
# The behaviour features live events change; the others (top categories) only the batch job
# computes, so the event path neither reads nor rewrites them.
USER_BEHAVIOUR_LIVE_FEATURES = (
    "history_items",
    "history_timestamps",
    "interaction_count",
    "recency_days",
    "frequency_30d",
    "monetary",
    "last_event_at",
)
USER_BEHAVIOUR_FEATURES = (*USER_BEHAVIOUR_LIVE_FEATURES, "top_categories", "top_category_scores")
USER_SEGMENT_FEATURES = ("segment",)
# What ranking one request reads: the model's inputs and the segment its metrics are labelled
# by. The rest of the profile (the full history's timestamps above all) costs a decode per
# request and is read only where it is shown or updated.
SCORING_FEATURES = frozenset({"history_items", "attribute_tokens", "segment"})
# The segment of users known only by their attributes (no interactions yet).
NEW_USER_SEGMENT = "new"
ITEM_FEATURES = (
    "category",
    "attribute_tokens",
    "attributes_json",
    "popularity",
    "popularity_rank",
    "last_interaction_at",
)


@dataclass(frozen=True, slots=True)
class UserFeatures:
    """What the online store knows about one user. Empty tuples when a view has no row."""

    user_id: str
    attribute_tokens: tuple[str, ...] = ()
    attributes_json: str | None = None
    history_items: tuple[str, ...] = ()
    history_timestamps: tuple[int, ...] = ()
    interaction_count: int = 0
    recency_days: float | None = None
    frequency_30d: int = 0
    monetary: float = 0.0
    last_event_at: int | None = None
    top_categories: tuple[str, ...] = ()
    top_category_scores: tuple[float, ...] = ()
    segment: str | None = None

    @property
    def has_history(self) -> bool:
        return bool(self.history_items)

    @property
    def has_attributes(self) -> bool:
        return bool(self.attribute_tokens)

    @property
    def is_known(self) -> bool:
        return self.has_history or self.has_attributes


# The segment step's report beside the user_segments table (k, sizes, silhouette).
SEGMENTS_REPORT_FILE = "segments.json"
