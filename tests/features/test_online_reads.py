"""The one-request readers answer what Feast's ``online_read`` answers view by view."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis

from app.features.client import FeastFeatureClient, parse_value, user_entity_key
from app.features.online_reads import RedisViewsReader, SqliteViewsReader, views_reader
from app.features.schema import SCORING_FEATURES, UserFeatures
from tests.features.test_client import U1, materialized_home

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("RECSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Every kind of user of the hand-built dataset, an unknown one, and a repeated id.
USERS = ["u1", "u2", "u3", "u4", "nobody", "u1"]


def per_view(features: FeastFeatureClient, user_ids: Sequence[str]) -> list[dict[str, Any]]:
    """What Feast's own ``online_read`` answers, one call per view."""
    store = features._store
    keys = [user_entity_key(user_id) for user_id in user_ids]
    rows: list[dict[str, Any]] = [{} for _ in user_ids]
    for view, names in features._load_views():
        found = store.provider.online_store.online_read(store.config, view, keys, list(names))
        for row, (_, values) in zip(rows, found, strict=True):
            row.update((name, value) for name, value in (values or {}).items() if name in names)
    return rows


@pytest.fixture(scope="module")
def sqlite_client(tmp_path_factory) -> Iterator[FeastFeatureClient]:
    features = FeastFeatureClient.from_settings(materialized_home(tmp_path_factory.mktemp("h")))
    yield features
    features.close()


@pytest.fixture
def redis_client(tmp_path) -> Iterator[FeastFeatureClient]:
    project = f"recserve_test_{uuid.uuid4().hex}"
    settings = materialized_home(tmp_path, redis_url=REDIS_URL, feast={"project": project})
    features = FeastFeatureClient.from_settings(settings)
    try:
        yield features
    finally:
        features.close()
        connection = redis.Redis.from_url(REDIS_URL)
        keys = list(connection.scan_iter(match=f"*{project}".encode()))
        if keys:
            connection.delete(*keys)
        connection.close()


@pytest.mark.parametrize(
    ("client_fixture", "reader_type"),
    [
        ("sqlite_client", SqliteViewsReader),  # one UNION ALL query
        pytest.param("redis_client", RedisViewsReader, marks=pytest.mark.redis),  # one HMGET
    ],
)
def test_every_view_is_read_in_one_request_as_feast_reads_them_view_by_view(
    request: pytest.FixtureRequest, client_fixture: str, reader_type: type
) -> None:
    client = request.getfixturevalue(client_fixture)
    reader = views_reader(client._store, client._load_views())

    assert isinstance(reader, reader_type)
    serialised = reader([user_entity_key(u) for u in USERS])
    parsed = [{name: parse_value(blob) for name, blob in row.items()} for row in serialised]
    assert parsed == per_view(client, USERS)
    assert client.read_values(USERS) == per_view(client, USERS)
    assert client.get_user("u1") == U1


@pytest.mark.parametrize(
    "client_fixture",
    ["sqlite_client", pytest.param("redis_client", marks=pytest.mark.redis)],
)
def test_a_read_of_some_features_answers_those_of_the_full_read_and_nothing_else(
    request: pytest.FixtureRequest, client_fixture: str
) -> None:
    client = request.getfixturevalue(client_fixture)
    wanted = SCORING_FEATURES
    narrowed = [{k: v for k, v in row.items() if k in wanted} for row in per_view(client, USERS)]

    assert client.read_values(USERS, wanted) == narrowed
    assert any(row for row in narrowed)  # the hand-built users do have these features
    only_scoring = {name: getattr(U1, name) for name in wanted}
    assert client.get_user("u1", wanted) == UserFeatures(user_id="u1", **only_scoring)
    assert client.get_user("u1") == U1  # the full read is still the full profile


def test_a_read_of_features_the_service_does_not_serve_reads_nothing(sqlite_client) -> None:
    assert sqlite_client.read_values(USERS, ["no_such_feature"]) == [{} for _ in USERS]
    assert sqlite_client.get_user("u1", ["no_such_feature"]) is None
