"""One contract, both feedback stores: the SQLite file under the home and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.feedback.store_postgres import PostgresFeedbackStore, unavailable
from app.feedback.store_sqlite import SqliteFeedbackStore
from app.feedback.types import (
    Feedback,
    FeedbackKind,
    FeedbackStore,
    FeedbackTarget,
    FeedbackUnavailable,
    NotInterested,
)
from tests.conftest import POSTGRES_MARKS, postgres_database

OpenStore = Callable[[], FeedbackStore]

NOT_INTERESTED = FeedbackKind.NOT_INTERESTED


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=POSTGRES_MARKS)])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens stores on one storage: two of them stand for two workers (or hosts)."""
    opened: list[FeedbackStore] = []

    def open_one() -> FeedbackStore:
        store: FeedbackStore
        if request.param == "postgres":
            schema = request.getfixturevalue("postgres_empty_schema")
            store = PostgresFeedbackStore(postgres_database(schema, unavailable))
        else:
            store = SqliteFeedbackStore(tmp_path / "privacy" / "feedback.db")
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


def said(
    user: str,
    kind: FeedbackKind,
    target: FeedbackTarget,
    target_id: str,
    rating: int | None = None,
) -> Feedback:
    return Feedback(user, kind, target, target_id, 1_700_000_000.5, rating)


async def test_not_interested_is_seen_by_another_reader(open_store: OpenStore) -> None:
    writer, reader = open_store(), open_store()
    assert await reader.not_interested("u1") == NotInterested()
    await writer.record(said("u1", NOT_INTERESTED, FeedbackTarget.ITEM, "i1"))
    await writer.record(said("u1", NOT_INTERESTED, FeedbackTarget.CATEGORY, "shoes"))
    await writer.record(said("u1", FeedbackKind.RATING, FeedbackTarget.ITEM, "i2", rating=2))
    await writer.record(said("u2", NOT_INTERESTED, FeedbackTarget.ITEM, "i9"))
    # Ratings never leave an item out; other users' entries are theirs.
    assert await reader.not_interested("u1") == NotInterested(
        frozenset({"i1"}), frozenset({"shoes"})
    )
    assert await reader.not_interested("u2") == NotInterested(frozenset({"i9"}))


async def test_entries_come_back_in_order_with_their_rating(open_store: OpenStore) -> None:
    store = open_store()
    first = said("u1", FeedbackKind.RATING, FeedbackTarget.LIST, "rec-1", rating=5)
    second = said("u1", NOT_INTERESTED, FeedbackTarget.ITEM, "i1")
    await store.record(first)
    await store.record(second)
    assert await store.entries("u1") == [first, second]
    assert await store.entries("nobody") == []


async def test_erase_removes_only_that_user(open_store: OpenStore) -> None:
    store = open_store()
    await store.record(said("u1", NOT_INTERESTED, FeedbackTarget.ITEM, "i1"))
    await store.record(said("u1", FeedbackKind.RATING, FeedbackTarget.ITEM, "i1", rating=1))
    await store.record(said("u2", NOT_INTERESTED, FeedbackTarget.ITEM, "i1"))
    assert await store.erase("u1") == 2
    assert await store.erase("u1") == 0
    assert await store.entries("u1") == []
    assert await store.not_interested("u1") == NotInterested()
    assert await store.not_interested("u2") == NotInterested(frozenset({"i1"}))


async def test_an_unreachable_database_raises_the_store_error() -> None:
    from app.storage.postgres import PostgresDatabase

    store = PostgresFeedbackStore(
        PostgresDatabase(
            "postgresql://postgres@127.0.0.1:9/test", schema="absent", unavailable=unavailable
        )
    )
    with pytest.raises(FeedbackUnavailable, match="postgres feedback store"):
        await store.not_interested("u1")
    await store.close()
