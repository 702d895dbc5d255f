"""``UserFeedback``: stored by pseudonym, and a failing store never fails a list (it is
answered without exclusions, and counted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from app.feedback.service import UserFeedback
from app.feedback.store_sqlite import SqliteFeedbackStore
from app.feedback.types import FeedbackKind, FeedbackTarget, FeedbackUnavailable, NotInterested


def read_errors() -> float:
    return REGISTRY.get_sample_value("recserve_feedback_read_errors_total") or 0.0


async def test_entries_are_keyed_by_the_pseudonym(tmp_path: Path) -> None:
    store = SqliteFeedbackStore(tmp_path / "feedback.db")
    feedback = UserFeedback(store, key_of=lambda user_id: f"p-{user_id}", clock=lambda: 12.0)
    await feedback.record("u1", FeedbackKind.NOT_INTERESTED, FeedbackTarget.ITEM, "i1")
    assert await feedback.not_interested("u1") == NotInterested(frozenset({"i1"}))
    assert [e.user_key for e in await store.entries("p-u1")] == ["p-u1"]
    assert await store.entries("u1") == []
    assert await feedback.erase("u1") == 1
    await feedback.close()


async def test_a_failing_store_answers_nothing_left_out_and_is_counted(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")  # the store's parent is a file: it can never be opened
    feedback = UserFeedback(SqliteFeedbackStore(blocked / "feedback.db"), key_of=str)
    before = read_errors()
    assert await feedback.not_interested("u1") == NotInterested()
    assert read_errors() == before + 1
    with pytest.raises(FeedbackUnavailable):
        await feedback.record("u1", FeedbackKind.RATING, FeedbackTarget.ITEM, "i1", rating=3)
    await feedback.close()
