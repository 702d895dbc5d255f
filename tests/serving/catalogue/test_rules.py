"""``ItemRules`` over a small catalogue: filters, and availability overrides shared by workers
through the real SQLite, Redis and PostgreSQL stores."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.artifacts import CatalogueItem
from app.infra.redis_client import redis_client
from app.serving.catalogue.availability import (
    AvailabilityStore,
    AvailabilityStoreError,
    RedisAvailabilityStore,
    SqliteAvailabilityStore,
)
from app.serving.catalogue.availability_postgres import PostgresAvailabilityStore, unavailable
from app.serving.catalogue.items import Availability, build_catalogue
from app.serving.catalogue.rule_config import BusinessRules, ItemFilter
from app.serving.catalogue.rules import ItemRules
from tests.conftest import POSTGRES_MARKS, TEST_REDIS_URL, delete_redis_keys, postgres_database

ENTRIES = [
    CatalogueItem(item_id="a", title="A", categories=["books"], price=10.0),
    CatalogueItem(item_id="b", title="B", categories=["books"], price=60.0, in_stock=False),
    CatalogueItem(item_id="c", title="C", categories=["toys"], price=None),
    CatalogueItem(item_id="d", title="D", categories=["toys"], price=30.0, hidden=True),
]
ALL = ["a", "b", "c", "d", "unknown"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
        pytest.param("postgres", marks=POSTGRES_MARKS),
    ]
)
async def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], AvailabilityStore]]:
    """Opens stores on one shared backend, like the workers of a deployment."""
    key = f"test:availability:{uuid.uuid4().hex}"
    url = (
        request.getfixturevalue("redis_cluster_url")
        if request.param == "redis-cluster"
        else TEST_REDIS_URL
    )
    opened: list[AvailabilityStore] = []

    def open_store() -> AvailabilityStore:
        store: AvailabilityStore
        if request.param == "sqlite":
            store = SqliteAvailabilityStore(tmp_path / "availability.db")
        elif request.param == "postgres":
            schema = request.getfixturevalue("postgres_empty_schema")
            store = PostgresAvailabilityStore(postgres_database(schema, unavailable))
        else:
            client = redis_client(url, socket_timeout=2, connect_timeout=2)
            store = RedisAvailabilityStore(client, key)
        opened.append(store)
        return store

    yield open_store
    if request.param.startswith("redis"):
        await delete_redis_keys(f"{key}*", url)
    for store in opened:
        await store.close()


def rules_on(
    store: AvailabilityStore, clock: Clock, rules: BusinessRules | None = None
) -> ItemRules:
    catalogue = build_catalogue(ENTRIES, ("a", "b", "c", "d"))
    return ItemRules(catalogue, "v1", Path("."), rules or BusinessRules(), store, 1.0, clock)


async def test_hidden_and_out_of_stock_are_left_out_by_default(
    store_factory: Callable[[], AvailabilityStore],
) -> None:
    rules = rules_on(store_factory(), Clock())
    assert rules.allowed(ALL) == ["a", "c", "unknown"]
    assert rules.allowed(ALL, ItemFilter(exclude_out_of_stock=False)) == ["a", "b", "c", "unknown"]
    keep_stock = rules_on(
        store_factory(), Clock(), BusinessRules(filters=ItemFilter(exclude_out_of_stock=False))
    )
    assert keep_stock.allowed(ALL) == ["a", "b", "c", "unknown"]
    assert keep_stock.allowed(ALL, ItemFilter(exclude_out_of_stock=True)) == ["a", "c", "unknown"]


async def test_category_and_price_filters_combine_with_the_global_rules(
    store_factory: Callable[[], AvailabilityStore],
) -> None:
    global_rules = BusinessRules(filters=ItemFilter(exclude_categories=["toys"]))
    rules = rules_on(store_factory(), Clock(), global_rules)
    assert rules.allowed(ALL) == ["a", "unknown"]
    assert rules.allowed(ALL, ItemFilter(categories=["books"])) == ["a"]
    # An item without a price (or unknown to the catalogue) fails any price bound.
    assert rules.allowed(ALL, ItemFilter(price_max=100.0, exclude_out_of_stock=False)) == [
        "a",
        "b",
    ]
    assert rules.allowed(ALL, ItemFilter(price_min=20.0, exclude_out_of_stock=False)) == ["b"]


async def test_an_override_reaches_another_worker_within_one_refresh(
    store_factory: Callable[[], AvailabilityStore],
) -> None:
    clock = Clock()
    writer, reader = rules_on(store_factory(), clock), rules_on(store_factory(), clock)
    await reader.refresh()
    key_before = reader.cache_key(None)

    state = await writer.set_availability("a", Availability(hidden=True))
    assert state.hidden is True
    assert writer.allowed(ALL) == ["c", "unknown"]  # the writing worker: at once

    await reader.refresh()  # within the refresh period: not polled yet
    assert reader.allowed(ALL) == ["a", "c", "unknown"]
    clock.now = 1.5
    await reader.refresh()
    assert reader.allowed(ALL) == ["c", "unknown"]
    assert reader.cache_key(None) != key_before  # cached lists of before now miss

    await writer.set_availability("d", Availability(hidden=False, in_stock=True))
    await writer.set_availability("a", Availability())  # back to the catalogue
    clock.now = 3.0
    await reader.refresh()
    assert reader.allowed(ALL) == ["a", "c", "d", "unknown"]
    assert reader.state("d").override == Availability(hidden=False, in_stock=True)
    assert reader.state("a").override == Availability()


async def test_a_failing_store_keeps_the_last_overrides(tmp_path: Path) -> None:
    store = SqliteAvailabilityStore(tmp_path / "availability.db")
    clock = Clock()
    rules = rules_on(store, clock)
    await rules.set_availability("a", Availability(hidden=True))
    await store.close()  # every call now fails
    clock.now = 5.0
    await rules.refresh()
    assert rules.allowed(ALL) == ["c", "unknown"]
    with pytest.raises(AvailabilityStoreError):
        await rules.set_availability("c", Availability(hidden=True))
