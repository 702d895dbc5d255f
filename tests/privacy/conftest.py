"""Consent stores for the contract suite: the embedded SQLite file and a real Redis (with a
key prefix of its own per test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from app.privacy.consent import ConsentStore
from app.privacy.consent_redis import RedisConsentStore
from app.privacy.consent_sqlite import SqliteConsentStore
from tests.conftest import TEST_REDIS_URL, delete_redis_keys


def redis_consent_store(prefix: str) -> RedisConsentStore:
    return RedisConsentStore(Redis.from_url(TEST_REDIS_URL, socket_timeout=1.0), prefix=prefix)


@pytest.fixture
def redis_prefix() -> str:
    return f"test:consent:{uuid.uuid4().hex}"


@pytest_asyncio.fixture(params=["sqlite", "redis"])
async def consent_store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str
) -> AsyncIterator[ConsentStore]:
    store: ConsentStore
    if request.param == "sqlite":
        store = SqliteConsentStore(tmp_path / "privacy" / "consent.db")
    else:
        store = redis_consent_store(redis_prefix)
    try:
        yield store
    finally:
        await store.close()
        await delete_redis_keys(f"{redis_prefix}:*")
