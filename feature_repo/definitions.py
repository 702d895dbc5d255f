"""Feast objects for recserve: entities, feature views over Parquet files, a push source and
the feature service serving reads.

Two callers build them:

* the app calls ``definitions(offline_dir)`` for any offline directory (no environment
  involved) and applies ``.objects()``;
* ``feast apply`` run in this folder imports this module and collects the module-level objects
  at the bottom, built from ``$RECSERVE_HOME/offline`` like the app's settings.

Feast imports this folder on its own, so it never imports ``app``; the names below duplicate
``app/features/schema.py`` and ``tests/features/test_repo_contract.py`` checks they agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.feast_object import FeastObject
from feast.types import Array, Float32, Float64, Int64, String

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

# Datasets such as MovieLens end in 1998: feature values must never expire by age.
NEVER_EXPIRES = timedelta(0)

USER_ATTRIBUTE_FIELDS = (
    Field(name="attribute_tokens", dtype=Array(String)),
    Field(name="attributes_json", dtype=String),
)
USER_BEHAVIOUR_FIELDS = (
    Field(name="history_items", dtype=Array(String)),
    Field(name="history_timestamps", dtype=Array(Int64)),
    Field(name="interaction_count", dtype=Int64),
    Field(name="recency_days", dtype=Float64),
    Field(name="frequency_30d", dtype=Int64),
    Field(name="monetary", dtype=Float64),
    Field(name="last_event_at", dtype=Int64),
    Field(name="top_categories", dtype=Array(String)),
    Field(name="top_category_scores", dtype=Array(Float32)),
)
USER_SEGMENT_FIELDS = (Field(name="segment", dtype=String),)
ITEM_FEATURE_FIELDS = (
    Field(name="category", dtype=String),
    Field(name="attribute_tokens", dtype=Array(String)),
    Field(name="attributes_json", dtype=String),
    Field(name="popularity", dtype=Int64),
    Field(name="popularity_rank", dtype=Int64),
    Field(name="last_interaction_at", dtype=Int64),
)


@dataclass(frozen=True)
class Definitions:
    """Every Feast object of the repo, by role."""

    user: Entity
    item: Entity
    user_attributes_file: FileSource
    user_behaviour_file: FileSource
    item_features_file: FileSource
    user_segments_file: FileSource
    user_attributes: FeatureView
    user_behaviour_push: PushSource
    user_behaviour: FeatureView
    item_features: FeatureView
    user_segments: FeatureView
    recommend: FeatureService

    def objects(self) -> list[FeastObject]:
        """Everything ``FeatureStore.apply`` needs, sources included."""
        return [
            self.user,
            self.item,
            self.user_attributes_file,
            self.user_behaviour_file,
            self.item_features_file,
            self.user_segments_file,
            self.user_behaviour_push,
            self.user_attributes,
            self.user_behaviour,
            self.item_features,
            self.user_segments,
            self.recommend,
        ]


def offline_file(offline_dir: Path, view: str) -> Path:
    """Where ``view``'s offline table lives: ``<offline_dir>/<view>.parquet``."""
    return offline_dir / f"{view}.parquet"


def definitions(offline_dir: Path) -> Definitions:
    """Build the repo's objects with Parquet sources under ``offline_dir`` (made absolute, so
    the registry does not depend on the working directory)."""
    offline_dir = offline_dir.resolve()
    user = Entity(name=USER_ENTITY, join_keys=[USER_JOIN_KEY], value_type=ValueType.STRING)
    item = Entity(name=ITEM_ENTITY, join_keys=[ITEM_JOIN_KEY], value_type=ValueType.STRING)
    user_attributes_file = _file_source(offline_dir, USER_ATTRIBUTES_VIEW)
    user_behaviour_file = _file_source(offline_dir, USER_BEHAVIOUR_VIEW)
    item_features_file = _file_source(offline_dir, ITEM_FEATURES_VIEW)
    user_segments_file = _file_source(offline_dir, USER_SEGMENTS_VIEW)
    user_attributes = FeatureView(
        name=USER_ATTRIBUTES_VIEW,
        entities=[user],
        ttl=NEVER_EXPIRES,
        schema=list(USER_ATTRIBUTE_FIELDS),
        source=user_attributes_file,
        online=True,
    )
    # The behaviour view reads through the push source, so real-time pushes and batch
    # materialization land in the same online rows.
    behaviour_push = PushSource(
        name=USER_BEHAVIOUR_PUSH_SOURCE,
        batch_source=user_behaviour_file,
    )
    user_behaviour = FeatureView(
        name=USER_BEHAVIOUR_VIEW,
        entities=[user],
        ttl=NEVER_EXPIRES,
        schema=list(USER_BEHAVIOUR_FIELDS),
        source=behaviour_push,
        online=True,
    )
    item_features = FeatureView(
        name=ITEM_FEATURES_VIEW,
        entities=[item],
        ttl=NEVER_EXPIRES,
        schema=list(ITEM_FEATURE_FIELDS),
        source=item_features_file,
        online=True,
    )
    # Batch output of `recserve segment` (K-Means on RFM); read with the profile for
    # experiment targeting and per-segment metrics.
    user_segments = FeatureView(
        name=USER_SEGMENTS_VIEW,
        entities=[user],
        ttl=NEVER_EXPIRES,
        schema=list(USER_SEGMENT_FIELDS),
        source=user_segments_file,
        online=True,
    )
    recommend = FeatureService(
        name=RECOMMEND_FEATURE_SERVICE, features=[user_attributes, user_behaviour, user_segments]
    )
    return Definitions(
        user=user,
        item=item,
        user_attributes_file=user_attributes_file,
        user_behaviour_file=user_behaviour_file,
        item_features_file=item_features_file,
        user_segments_file=user_segments_file,
        user_attributes=user_attributes,
        user_behaviour_push=behaviour_push,
        user_behaviour=user_behaviour,
        item_features=item_features,
        user_segments=user_segments,
        recommend=recommend,
    )


def _file_source(offline_dir: Path, view: str) -> FileSource:
    return FileSource(
        name=f"{view}_file",
        path=str(offline_file(offline_dir, view)),
        timestamp_field=EVENT_TIMESTAMP,
    )


# For `feast apply` in this folder: Feast collects module-level objects (sources come with the
# views). RECSERVE_HOME defaults like app.settings.Settings.home does.
_CLI = definitions(Path(os.environ.get("RECSERVE_HOME", ".recserve")) / "offline")
user = _CLI.user
item = _CLI.item
user_attributes = _CLI.user_attributes
user_behaviour_push = _CLI.user_behaviour_push
user_behaviour = _CLI.user_behaviour
item_features = _CLI.item_features
user_segments = _CLI.user_segments
recommend_v1 = _CLI.recommend
