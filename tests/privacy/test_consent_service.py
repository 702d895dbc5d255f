"""Consent by raw user id: defaults, pseudonymised keys, and the per-worker cache in front of
Redis kept coherent over pub/sub (two services stand for two workers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from app.bootstrap import build_consent
from app.privacy.consent import ConsentPolicy, ConsentRecord, Purpose
from app.privacy.consent_redis import RedisConsentStore
from app.privacy.consent_sqlite import SqliteConsentStore
from app.privacy.pseudonym import Pseudonymizer
from app.privacy.service import ConsentService
from app.serving.cache.invalidation import SubscribedLocalCache, subscriber_client_from_url
from app.serving.cache.local_tier import LocalCache
from app.settings import Settings
from tests.conftest import TEST_REDIS_URL, delete_redis_keys
from tests.privacy.conftest import redis_consent_store

pytestmark = pytest.mark.integration

PSEUDONYMS = Pseudonymizer(b"test-key-of-sixteen-bytes")
OPT_IN = ConsentPolicy({Purpose.PERSONALIZATION: False, Purpose.TRACKING: False})


async def test_defaults_apply_until_the_user_chooses(tmp_path: Path) -> None:
    store = SqliteConsentStore(tmp_path / "consent.db")
    service = ConsentService(store, OPT_IN, PSEUDONYMS)
    assert await service.allows("u1", Purpose.TRACKING) is False

    resolved, record = await service.update("u1", {Purpose.TRACKING: True})

    assert resolved == {Purpose.PERSONALIZATION: False, Purpose.TRACKING: True}
    assert record.choices == {"tracking": True}
    assert await service.allows("u1", Purpose.TRACKING) is True
    assert await service.allows("u1", Purpose.PERSONALIZATION) is False
    # Stored under the pseudonym only.
    assert await store.get(PSEUDONYMS.of("u1")) is not None
    assert await store.get("u1") is None
    await service.close()


async def test_sqlite_changes_reach_another_worker_at_once(tmp_path: Path) -> None:
    path = tmp_path / "consent.db"
    first = ConsentService(SqliteConsentStore(path), OPT_IN, PSEUDONYMS)
    second = ConsentService(SqliteConsentStore(path), OPT_IN, PSEUDONYMS)
    assert await first.allows("u1", Purpose.PERSONALIZATION) is False

    await second.update("u1", {Purpose.PERSONALIZATION: True})

    assert await first.allows("u1", Purpose.PERSONALIZATION) is True
    await first.close()
    await second.close()


async def _cached_service(prefix: str) -> tuple[ConsentService, SubscribedLocalCache]:
    store = redis_consent_store(prefix)
    cache = SubscribedLocalCache(
        LocalCache(100, 60.0), subscriber_client_from_url(TEST_REDIS_URL, 1.0), store.channel
    )
    cache.start()
    await cache.wait_subscribed(5.0)
    return ConsentService(store, OPT_IN, PSEUDONYMS, cache=cache), cache


async def _eventually(condition_met: Callable[[], Awaitable[bool]], seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition_met():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not seen within {seconds}s")


async def test_redis_cache_serves_reads_and_every_change_reaches_other_workers(
    redis_prefix: str,
) -> None:
    reader, _ = await _cached_service(redis_prefix)
    writer, _ = await _cached_service(redis_prefix)
    try:
        assert await reader.allows("u1", Purpose.TRACKING) is False  # now cached
        # Written behind the services' back (no broadcast): the reader keeps its cached answer,
        # so it really reads from its cache.
        async with Redis.from_url(TEST_REDIS_URL) as raw:
            key = f"{redis_prefix}:{PSEUDONYMS.of('u1')}"
            await raw.set(key, ConsentRecord({"tracking": True}, 1.0).to_bytes())
        assert await reader.allows("u1", Purpose.TRACKING) is False

        await writer.update("u1", {Purpose.TRACKING: False, Purpose.PERSONALIZATION: True})

        async def reader_sees_change() -> bool:
            return await reader.allows("u1", Purpose.PERSONALIZATION)

        await _eventually(reader_sees_change)
        await writer.erase("u1")

        async def reader_sees_erasure() -> bool:
            return not await reader.allows("u1", Purpose.PERSONALIZATION)

        await _eventually(reader_sees_erasure)
    finally:
        await reader.close()
        await writer.close()
        await delete_redis_keys(f"{redis_prefix}:*")


async def test_bootstrap_picks_the_store_from_settings(tmp_path: Path, redis_prefix: str) -> None:
    embedded = build_consent(Settings(home=tmp_path))
    assert isinstance(embedded.store, SqliteConsentStore)
    assert embedded.store.path == tmp_path / "privacy" / "consent.db"
    await embedded.close()
    shared = build_consent(
        Settings(
            home=tmp_path,
            redis_url=TEST_REDIS_URL,
            privacy={"consent_redis_prefix": redis_prefix},
        )
    )
    assert isinstance(shared.store, RedisConsentStore)
    await shared.update("u1", {Purpose.TRACKING: False})
    assert await shared.allows("u1", Purpose.TRACKING) is False
    await shared.close()
    await delete_redis_keys(f"{redis_prefix}:*")


async def test_sqlite_reads_query_the_file_only_after_a_change(tmp_path: Path) -> None:
    store = SqliteConsentStore(tmp_path / "consent.db")
    await store.record("k1", {"tracking": True}, 1.0)
    assert (await store.get_many(["k1", "k2"]))["k1"] is not None
    queries: list[str] = []
    assert store._reader is not None
    store._reader.set_trace_callback(queries.append)

    again = await store.get_many(["k1", "k2"])  # nothing changed: answered from the cache
    await store.record("k2", {"tracking": False}, 2.0)  # the writer's connection commits
    changed = await store.get_many(["k1", "k2"])

    assert again["k1"] is not None
    assert again["k2"] is None
    assert changed["k2"] is not None
    assert changed["k2"].choices == {"tracking": False}
    selects = [q for q in queries if q.startswith("SELECT")]
    # One query, after the write, for both keys: the change emptied the cache.
    assert len(selects) == 1
    assert selects[0].endswith("('k1','k2')")
    await store.close()
