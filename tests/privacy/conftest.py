"""Consent stores for the contract suite: the embedded SQLite file, a real Redis (with a
key prefix of its own per test) and PostgreSQL (the test run's schema)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from app.privacy.consent import ConsentStore
from app.privacy.consent_postgres import PostgresConsentStore, unavailable
from app.privacy.consent_redis import RedisConsentStore
from app.privacy.consent_sqlite import SqliteConsentStore
from tests.conftest import POSTGRES_MARKS, TEST_REDIS_URL, delete_redis_keys, postgres_database


def redis_consent_store(prefix: str) -> RedisConsentStore:
    return RedisConsentStore(Redis.from_url(TEST_REDIS_URL, socket_timeout=1.0), prefix=prefix)


@pytest.fixture
def redis_prefix() -> str:
    return f"test:consent:{uuid.uuid4().hex}"


@pytest_asyncio.fixture(params=["sqlite", "redis", pytest.param("postgres", marks=POSTGRES_MARKS)])
async def consent_store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str
) -> AsyncIterator[ConsentStore]:
    store: ConsentStore
    if request.param == "sqlite":
        store = SqliteConsentStore(tmp_path / "privacy" / "consent.db")
    elif request.param == "postgres":
        schema = request.getfixturevalue("postgres_empty_schema")
        store = PostgresConsentStore(postgres_database(schema, unavailable))
    else:
        store = redis_consent_store(redis_prefix)
    try:
        yield store
    finally:
        await store.close()
        await delete_redis_keys(f"{redis_prefix}:*")
