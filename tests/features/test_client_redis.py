"""FeastFeatureClient with Feast's Redis online store, against the real Redis server."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from app.features.client import FeastFeatureClient
from app.features.schema import UserFeatures
from tests.features.test_client import U1, materialized_home

pytestmark = [pytest.mark.redis, pytest.mark.integration]

REDIS_URL = os.environ.get("RECSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _project_keys(connection: redis.Redis, project: str) -> list[bytes]:
    # Feast's Redis keys are the serialized entity key followed by the project name.
    return list(connection.scan_iter(match=f"*{project}".encode()))


@pytest.fixture
def redis_client(tmp_path):
    """A client over a Redis online store materialized under a project of its own; the
    project's keys are deleted afterwards."""
    project = f"recserve_test_{uuid.uuid4().hex}"
    settings = materialized_home(tmp_path, redis_url=REDIS_URL, feast={"project": project})
    connection = redis.Redis.from_url(REDIS_URL)
    features = FeastFeatureClient.from_settings(settings)
    try:
        yield features, connection, project
    finally:
        features.close()
        keys = _project_keys(connection, project)
        if keys:
            connection.delete(*keys)
        connection.close()


def test_reads_what_was_materialized(redis_client):
    features, connection, project = redis_client

    assert features.get_user("u1") == U1
    assert features.get_user("u3") == UserFeatures(
        user_id="u3",
        attribute_tokens=("age=60s", "hobbies=chess"),
        attributes_json='{"age": "67", "hobbies": ["chess"]}',
        segment="new",
    )
    assert features.get_user("nobody") is None
    features.ping()
    # u1..u4 plus five items, all under this test's project.
    assert len(_project_keys(connection, project)) == 9


def test_every_read_asks_redis_for_the_same_fields(redis_client):
    # Feast's Redis store appends its timestamp field to the feature list it is given: a list
    # the client kept and handed over again would grow by one field per read, without bound
    # (each read hashing and fetching every field added so far).
    features, _, _ = redis_client
    online_store = features._store.provider.online_store
    read_hash_fields = online_store._read_hash_fields
    asked: list[list[int]] = []

    def observed(config, commands):
        asked.append([len(fields) for _, fields in commands])
        return read_hash_fields(config, commands)

    online_store._read_hash_fields = observed
    for _ in range(5):
        assert features.get_user("u1") == U1

    # One HMGET per read: every view's features plus each view's timestamp field.
    fields = sum(len(names) + 1 for _, names in features._load_views())
    assert asked == [[fields]] * 5
