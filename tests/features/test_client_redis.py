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
