"""The consent store contract, run against SQLite, a real Redis and a real Redis Cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis, RedisCluster

from app.infra import invalidation_stream
from app.infra.breaker import BreakerState, CircuitBreaker
from app.infra.invalidation_message import decode_invalidation
from app.infra.redis_client import redis_client
from app.privacy.consent import ConsentStore, ConsentUnavailable
from app.privacy.consent_redis import RedisConsentStore
from app.privacy.consent_sqlite import SqliteConsentStore
from tests.conftest import TEST_REDIS_URL, delete_redis_keys
from tests.privacy.conftest import redis_consent_store

pytestmark = pytest.mark.integration


async def test_unknown_user_has_no_record(consent_store: ConsentStore) -> None:
    assert await consent_store.get("nobody") is None
    assert await consent_store.history("nobody") == []


async def test_changes_merge_and_history_keeps_each_change(consent_store: ConsentStore) -> None:
    await consent_store.record("p1", {"personalization": True, "tracking": True}, 100.0)
    merged = await consent_store.record("p1", {"tracking": False}, 200.0)

    assert merged.choices == {"personalization": True, "tracking": False}
    assert merged.updated_at == 200.0
    stored = await consent_store.get("p1")
    assert stored is not None
    assert (stored.choices, stored.updated_at) == (merged.choices, 200.0)
    history = await consent_store.history("p1")
    assert [(h.changes, h.at) for h in history] == [
        ({"personalization": True, "tracking": True}, 100.0),
        ({"tracking": False}, 200.0),
    ]
    assert await consent_store.get("p2") is None  # other users untouched


async def test_get_many_answers_every_key_in_order_with_none_for_the_unknown(
    consent_store: ConsentStore,
) -> None:
    await consent_store.record("p1", {"tracking": False}, 100.0)
    await consent_store.record("p3", {"personalization": True}, 300.0)

    found = await consent_store.get_many(["p3", "nobody", "p1"])

    assert list(found) == ["p3", "nobody", "p1"]
    assert found["nobody"] is None
    assert found["p1"] == await consent_store.get("p1")
    assert found["p3"] is not None
    assert found["p3"].choices == {"personalization": True}
    assert await consent_store.get_many([]) == {}


async def test_erase_forgets_choices_and_history(consent_store: ConsentStore) -> None:
    await consent_store.record("p1", {"tracking": False}, 100.0)
    await consent_store.record("p2", {"tracking": False}, 100.0)

    assert await consent_store.erase("p1") is True
    assert await consent_store.erase("p1") is False  # idempotent
    assert await consent_store.get("p1") is None
    assert await consent_store.history("p1") == []
    assert await consent_store.get("p2") is not None


async def test_concurrent_changes_of_one_user_lose_nothing(consent_store: ConsentStore) -> None:
    await asyncio.gather(
        consent_store.record("p1", {"personalization": False}, 1.0),
        consent_store.record("p1", {"tracking": False}, 2.0),
    )
    stored = await consent_store.get("p1")
    assert stored is not None
    assert stored.choices == {"personalization": False, "tracking": False}
    assert len(await consent_store.history("p1")) == 2


async def test_sqlite_store_that_cannot_open_raises_unavailable(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    store = SqliteConsentStore(tmp_path / "not-a-dir" / "consent.db")
    with pytest.raises(ConsentUnavailable):
        await store.get("p1")
    with pytest.raises(ConsentUnavailable):
        await store.record("p1", {"tracking": True}, 1.0)
    await store.close()


async def test_unreachable_redis_raises_unavailable() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    store = RedisConsentStore(client, prefix="unused")
    with pytest.raises(ConsentUnavailable):
        await store.get("p1")
    with pytest.raises(ConsentUnavailable):
        await store.record("p1", {"tracking": True}, 1.0)
    await store.close()


async def test_redis_change_is_broadcast_to_workers(redis_prefix: str) -> None:
    store = redis_consent_store(redis_prefix)
    async with Redis.from_url(TEST_REDIS_URL) as listener, listener.pubsub() as pubsub:
        await pubsub.subscribe(store.channel)
        await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
        await store.record("p1", {"tracking": False}, 1.0)
        await store.erase("p1")
        received = [await pubsub.get_message(timeout=1.0) for _ in range(2)]
    await store.close()
    assert [decode_invalidation(m["data"]) for m in received if m] == [["p1"], ["p1"]]


async def test_redis_cluster_change_is_announced_and_erasure_empties_the_stream(
    redis_prefix: str, redis_cluster_url: str
) -> None:
    store = redis_consent_store(redis_prefix, redis_cluster_url)
    listener = redis_client(redis_cluster_url, socket_timeout=None, connect_timeout=1.0)
    assert isinstance(listener, RedisCluster)
    ready = asyncio.Event()
    received: list[bytes] = []

    async def listen() -> None:
        async for message in invalidation_stream.messages(listener, store.channel, ready.set):
            received.append(message)
            if len(received) == 2:
                return

    listening = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 10.0)
    await store.record("p1", {"tracking": False}, 1.0)
    await store.erase("p1")
    await asyncio.wait_for(listening, 10.0)
    # The erasure emptied the stream, which named the pseudonym, and told every reader to drop
    # everything it holds (it may have missed a deleted message).
    left = await listener.xrange(invalidation_stream.stream_key(store.channel))
    await store.close()
    await listener.aclose()
    await delete_redis_keys(f"{redis_prefix}:*", redis_cluster_url)
    assert [decode_invalidation(received[0]), received[1]] == [
        ["p1"],
        invalidation_stream.CLEAR_ALL,
    ]
    assert [fields for _, fields in left] == [{b"m": invalidation_stream.CLEAR_ALL}]


async def test_redis_reads_skip_a_failing_redis_until_the_retry_delay() -> None:
    breaker = CircuitBreaker(retry_after_seconds=60)
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    store = RedisConsentStore(client, prefix="unused", breaker=breaker)
    with pytest.raises(ConsentUnavailable, match="get"):
        await store.get("p1")
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(ConsentUnavailable, match="skipped"):
        await store.get("p1")
    await store.close()
