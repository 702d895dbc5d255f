"""``feature_repo`` cannot import ``app``, so its copies of the names are checked here."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from feast.repo_config import load_repo_config
from feast.repo_operations import parse_repo

from app.features import schema
from app.features.store import registry_path, sqlite_path
from app.settings import Settings
from feature_repo import definitions as repo

REPO_DIR = Path(repo.__file__).parent


def test_names_agree():
    for name in (
        "USER_ENTITY",
        "ITEM_ENTITY",
        "USER_JOIN_KEY",
        "ITEM_JOIN_KEY",
        "EVENT_TIMESTAMP",
        "USER_ATTRIBUTES_VIEW",
        "USER_BEHAVIOUR_VIEW",
        "ITEM_FEATURES_VIEW",
        "USER_SEGMENTS_VIEW",
        "USER_BEHAVIOUR_PUSH_SOURCE",
        "RECOMMEND_FEATURE_SERVICE",
    ):
        assert getattr(repo, name) == getattr(schema, name), name


def test_views_have_exactly_the_schema_features_and_never_expire(tmp_path):
    built = repo.definitions(tmp_path)
    expected = {
        schema.USER_ATTRIBUTES_VIEW: (built.user_attributes, schema.USER_ATTRIBUTE_FEATURES),
        schema.USER_BEHAVIOUR_VIEW: (built.user_behaviour, schema.USER_BEHAVIOUR_FEATURES),
        schema.ITEM_FEATURES_VIEW: (built.item_features, schema.ITEM_FEATURES),
        schema.USER_SEGMENTS_VIEW: (built.user_segments, schema.USER_SEGMENT_FEATURES),
    }
    for name, (view, features) in expected.items():
        assert view.name == name
        assert tuple(f.name for f in view.features) == features
        assert view.ttl == timedelta(0)
        assert view.batch_source.path == str(tmp_path.resolve() / f"{name}.parquet")
        assert view.batch_source.timestamp_field == schema.EVENT_TIMESTAMP
    assert [e.join_key for e in (built.user, built.item)] == [
        schema.USER_JOIN_KEY,
        schema.ITEM_JOIN_KEY,
    ]


def test_every_served_feature_is_a_user_features_field(tmp_path):
    built = repo.definitions(tmp_path)
    record_fields = {f.name for f in dataclasses.fields(schema.UserFeatures)}

    service = built.recommend
    assert service.name == schema.RECOMMEND_FEATURE_SERVICE
    served = [(p.name, [f.name for f in p.features]) for p in service.feature_view_projections]
    assert served == [
        (schema.USER_ATTRIBUTES_VIEW, list(schema.USER_ATTRIBUTE_FEATURES)),
        (schema.USER_BEHAVIOUR_VIEW, list(schema.USER_BEHAVIOUR_FEATURES)),
        (schema.USER_SEGMENTS_VIEW, list(schema.USER_SEGMENT_FEATURES)),
    ]
    assert {f for _, features in served for f in features} <= record_fields


def test_behaviour_view_reads_through_the_push_source(tmp_path):
    built = repo.definitions(tmp_path)

    assert built.user_behaviour.stream_source is built.user_behaviour_push
    assert built.user_behaviour_push.name == schema.USER_BEHAVIOUR_PUSH_SOURCE
    assert built.user_behaviour_push.batch_source is built.user_behaviour.batch_source


def test_cli_yaml_points_where_the_app_does(monkeypatch, tmp_path):
    monkeypatch.setenv("RECSERVE_HOME", str(tmp_path))
    settings = Settings(home=tmp_path)

    config = load_repo_config(REPO_DIR, REPO_DIR / "feature_store.yaml")

    assert config.project == settings.feast.project
    assert config.registry.path == str(registry_path(settings))
    assert config.registry.cache_ttl_seconds == 0
    assert config.online_store.path == str(sqlite_path(settings))
    assert config.entity_key_serialization_version == 3


def test_feast_cli_collects_every_object(monkeypatch):
    # Feast names modules relative to the working directory, as `feast -c feature_repo apply`.
    monkeypatch.chdir(REPO_DIR.parent)

    contents = parse_repo(REPO_DIR)

    assert {"item", "user"} <= {e.name for e in contents.entities}  # Feast adds "__dummy"
    assert sorted(v.name for v in contents.feature_views) == sorted(
        [
            schema.ITEM_FEATURES_VIEW,
            schema.USER_ATTRIBUTES_VIEW,
            schema.USER_BEHAVIOUR_VIEW,
            schema.USER_SEGMENTS_VIEW,
        ]
    )
    assert [s.name for s in contents.feature_services] == [schema.RECOMMEND_FEATURE_SERVICE]
    assert schema.USER_BEHAVIOUR_PUSH_SOURCE in {s.name for s in contents.data_sources}


def test_app_feature_modules_do_not_import_feast():
    """``import feast`` takes seconds; the API imports these modules on start."""
    code = (
        "import sys, app.features.schema, app.features.client, app.features.store, "
        "app.features.tokens, app.features.offline; print('feast' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_the_request_path_reads_every_feature_a_model_is_exported_as_reading():
    """Serving reads only ``SCORING_FEATURES`` per request; a model listing a feature outside
    them would be scored without it."""
    from app.training.export import FEATURE_LIST

    read_by_models = {entry.split(":", 1)[1] for entry in FEATURE_LIST}
    assert read_by_models <= schema.SCORING_FEATURES
    all_features = {
        *schema.USER_ATTRIBUTE_FEATURES,
        *schema.USER_BEHAVIOUR_FEATURES,
        *schema.USER_SEGMENT_FEATURES,
    }
    assert all_features >= schema.SCORING_FEATURES  # no name the store does not have
