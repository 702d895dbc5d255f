"""One contract, every ``ExposureStore``: in-memory, SQLite (a file), Redis (real server) and
PostgreSQL (the test run's schema).

``open_store`` opens stores on the same storage: two of them stand for two uvicorn workers
(the in-memory store has no shared storage, so it hands back the same object). A new backend
joins by adding a parameter to ``open_store``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.experiments.attribution import (
    Counter,
    Exposure,
    ExposureStore,
    InMemoryExposureStore,
    Unattributed,
    VariantCounts,
)
from app.experiments.store_postgres import PostgresExposureStore, unavailable
from app.experiments.store_redis import RedisExposureStore
from app.experiments.store_sqlite import SqliteExposureStore
from app.infra.redis_client import redis_client
from tests.conftest import POSTGRES_MARKS, TEST_REDIS_URL, delete_redis_keys, postgres_database

HOUR = timedelta(hours=1)
OpenStore = Callable[[], Awaitable[ExposureStore]]


def exposure(rec: str, variant: str = "control", user: str = "u1", **kw: object) -> Exposure:
    fields: dict[str, object] = {
        "recommendation_id": rec,
        "experiment_id": "ab-1",
        "variant": variant,
        "user_key": user,
        "positions": {"i1": 1, "i2": 2, "i3": 3},
        "served_at": datetime.now(UTC),
    }
    fields.update(kw)
    return Exposure(**fields)  # type: ignore[arg-type]


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
        pytest.param("postgres", marks=POSTGRES_MARKS),
    ]
)
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    opened: list[ExposureStore] = []
    prefix = f"test:exp:{uuid.uuid4().hex}"
    url = (
        request.getfixturevalue("redis_cluster_url")
        if request.param == "redis-cluster"
        else TEST_REDIS_URL
    )
    memory = InMemoryExposureStore()

    async def open_one() -> ExposureStore:
        store: ExposureStore
        if request.param == "memory":
            return memory
        if request.param == "sqlite":
            store = SqliteExposureStore(tmp_path / "exposures.db")
        elif request.param == "postgres":
            schema = request.getfixturevalue("postgres_empty_schema")
            store = PostgresExposureStore(postgres_database(schema, unavailable))
        else:
            store = RedisExposureStore(
                redis_client(url, socket_timeout=2, connect_timeout=2), prefix=prefix
            )
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()
    if request.param.startswith("redis"):
        await delete_redis_keys(f"{prefix}*", url)


@pytest.fixture
async def store(open_store: OpenStore) -> ExposureStore:
    return await open_store()


async def test_saved_exposure_is_found_whole(store: ExposureStore) -> None:
    saved = exposure("rec-1", positions={"a": 1, "b": 2})
    await store.save_exposure(saved, HOUR)
    assert await store.find_exposure("rec-1") == saved
    assert await store.find_exposure("rec-unknown") is None


async def test_exposures_and_distinct_users_are_counted_per_variant(store: ExposureStore) -> None:
    await store.save_exposure(exposure("r1", user="alice"), HOUR)
    await store.save_exposure(exposure("r2", user="alice"), HOUR)
    await store.save_exposure(exposure("r3", user="bob"), HOUR)
    await store.save_exposure(exposure("r4", variant="treatment", user="carol"), HOUR)
    await store.save_exposure(exposure("r5", experiment_id="other"), HOUR)

    counts = await store.variant_counts("ab-1")

    assert counts == {
        "control": VariantCounts(exposures=3, users=2),
        "treatment": VariantCounts(exposures=1, users=1),
    }
    assert await store.variant_counts("never-run") == {}


async def test_a_retried_save_counts_once(store: ExposureStore) -> None:
    first = exposure("r1")
    await store.save_exposure(first, HOUR)
    await store.save_exposure(exposure("r1", variant="treatment", user="other"), HOUR)
    assert await store.find_exposure("r1") == first
    assert await store.variant_counts("ab-1") == {"control": VariantCounts(exposures=1, users=1)}


async def test_each_recommendation_item_and_counter_counts_once(store: ExposureStore) -> None:
    shown = exposure("r1")
    await store.save_exposure(shown, HOUR)
    await store.save_exposure(exposure("r2"), HOUR)

    assert await store.count_once(shown, "i1", Counter.IMPRESSIONS)
    assert not await store.count_once(shown, "i1", Counter.IMPRESSIONS)
    assert await store.count_once(shown, "i1", Counter.CLICKS)
    assert await store.count_once(shown, "i2", Counter.CLICKS)
    assert await store.count_once(shown, "i2", Counter.CONVERSIONS)
    assert not await store.count_once(shown, "i2", Counter.CONVERSIONS)
    assert await store.count_once(exposure("r2"), "i1", Counter.CLICKS)  # another recommendation

    assert (await store.variant_counts("ab-1"))["control"] == VariantCounts(
        exposures=2, users=1, impressions=1, clicks=3, conversions=1
    )


async def test_unattributed_events_are_counted_per_variant_and_reason(
    open_store: OpenStore,
) -> None:
    worker_a, worker_b = await open_store(), await open_store()
    control, treatment = exposure("r1"), exposure("r2", variant="treatment")
    await worker_a.save_exposure(control, HOUR)
    await worker_a.save_exposure(treatment, HOUR)

    await worker_a.count_unattributed(control, Unattributed.BEFORE_EXPOSURE)
    await worker_b.count_unattributed(control, Unattributed.BEFORE_EXPOSURE)
    await worker_b.count_unattributed(control, Unattributed.ITEM_NOT_SHOWN)
    await worker_a.count_unattributed(treatment, Unattributed.AFTER_WINDOW)

    counts = await worker_b.variant_counts("ab-1")
    assert counts["control"].unattributed == {"before_exposure": 2, "item_not_shown": 1}
    assert counts["treatment"].unattributed == {"after_window": 1}
    assert counts["control"].impressions == counts["treatment"].clicks == 0


async def test_nothing_counts_for_an_unknown_recommendation(store: ExposureStore) -> None:
    await store.save_exposure(exposure("r1"), HOUR)
    assert not await store.count_once(exposure("never-saved"), "i1", Counter.CLICKS)
    assert (await store.variant_counts("ab-1"))["control"].clicks == 0


async def test_expired_exposures_are_forgotten_but_counters_kept(store: ExposureStore) -> None:
    old = exposure("r-old")
    await store.save_exposure(old, timedelta(milliseconds=200))
    assert await store.count_once(old, "i1", Counter.CLICKS)
    await asyncio.sleep(0.3)
    await store.save_exposure(exposure("r-new"), HOUR)  # a newer exposure, past the old one's ttl

    assert await store.find_exposure("r-old") is None
    assert not await store.count_once(old, "i2", Counter.CLICKS)
    assert (await store.variant_counts("ab-1"))["control"] == VariantCounts(
        exposures=2, users=1, clicks=1
    )


async def test_stores_on_the_same_storage_share_everything(open_store: OpenStore) -> None:
    worker_a, worker_b = await open_store(), await open_store()
    shown = exposure("r1", user="alice")
    await worker_a.save_exposure(shown, HOUR)
    await worker_b.save_exposure(exposure("r1", user="alice"), HOUR)  # a retry via another worker
    await worker_b.save_exposure(exposure("r2", user="bob"), HOUR)

    assert await worker_b.find_exposure("r1") == shown
    results = await asyncio.gather(
        *(w.count_once(shown, "i1", Counter.CLICKS) for w in (worker_a, worker_b) * 5)
    )
    assert sum(results) == 1
    expected = VariantCounts(exposures=2, users=2, clicks=1)
    assert (await worker_a.variant_counts("ab-1"))["control"] == expected
    assert (await worker_b.variant_counts("ab-1"))["control"] == expected


async def test_delete_user_forgets_their_exposures_and_keeps_the_totals(
    open_store: OpenStore,
) -> None:
    worker_a, worker_b = await open_store(), await open_store()
    start = datetime.now(UTC)
    first = exposure("r1", user="alice", served_at=start)
    second = exposure("r2", variant="treatment", user="alice", served_at=start + HOUR / 60)
    other = exposure("r3", user="bob", served_at=start)
    for saved in (second, first, other):
        await worker_a.save_exposure(saved, HOUR)
    assert await worker_a.count_once(first, "i1", Counter.CLICKS)
    assert await worker_b.exposures_of("alice") == [first, second]
    before = await worker_a.variant_counts("ab-1")

    assert await worker_b.delete_user("alice") == 2

    assert await worker_a.find_exposure("r1") is None
    assert await worker_a.find_exposure("r2") is None
    assert await worker_a.exposures_of("alice") == []
    assert await worker_a.exposures_of("bob") == [other]
    assert not await worker_a.count_once(first, "i2", Counter.CLICKS)  # nothing to attribute to
    after = await worker_a.variant_counts("ab-1")
    # Counters are anonymous totals and stay; the distinct-user count drops where the backend
    # can forget one member (not Redis's HyperLogLog).
    assert {v: dataclasses.replace(c, users=0) for v, c in after.items()} == {
        v: dataclasses.replace(c, users=0) for v, c in before.items()
    }
    assert all(after[v].users <= before[v].users for v in before)
    assert await worker_a.delete_user("alice") == 0  # idempotent
    assert await worker_a.delete_user("nobody") == 0
