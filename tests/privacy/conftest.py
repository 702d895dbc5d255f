"""Consent stores for the contract suite: the embedded SQLite file, a real Redis and a real Redis
Cluster (with a key prefix of its own per test) and PostgreSQL (the test run's schema)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from app.infra.redis_client import redis_client
from app.privacy.consent import ConsentStore
from app.privacy.consent_postgres import PostgresConsentStore, unavailable
from app.privacy.consent_redis import RedisConsentStore
from app.privacy.consent_sqlite import SqliteConsentStore
from tests.conftest import POSTGRES_MARKS, TEST_REDIS_URL, delete_redis_keys, postgres_database


def redis_consent_store(prefix: str, url: str = TEST_REDIS_URL) -> RedisConsentStore:
    client = redis_client(url, socket_timeout=1.0, connect_timeout=1.0)
    return RedisConsentStore(client, prefix=prefix)


@pytest.fixture
def redis_prefix() -> str:
    return f"test:consent:{uuid.uuid4().hex}"


@pytest_asyncio.fixture(
    params=["sqlite", "redis", "redis-cluster", pytest.param("postgres", marks=POSTGRES_MARKS)]
)
async def consent_store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str
) -> AsyncIterator[ConsentStore]:
    store: ConsentStore
    if request.param == "sqlite":
        store = SqliteConsentStore(tmp_path / "privacy" / "consent.db")
    elif request.param == "postgres":
        schema = request.getfixturevalue("postgres_empty_schema")
        store = PostgresConsentStore(postgres_database(schema, unavailable))
    elif request.param == "redis-cluster":
        url = request.getfixturevalue("redis_cluster_url")
        store = redis_consent_store(redis_prefix, url)
    else:
        url = TEST_REDIS_URL
        store = redis_consent_store(redis_prefix, url)
    try:
        yield store
    finally:
        await store.close()
        if request.param.startswith("redis"):
            await delete_redis_keys(f"{redis_prefix}:*", url)
