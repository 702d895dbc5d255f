"""FeastBehaviourStore (the event path's read-merge-write) on the SQLite and Redis online
stores: what it writes is what the serving client reads next, nothing else in the row moves."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from app.features.behaviour import BehaviourRow
from app.features.client import FeastFeatureClient
from app.features.push import FeastBehaviourStore
from app.settings import Settings
from tests.features.factories import DAY, A
from tests.features.test_client import U1, materialized_home

REDIS_URL = os.environ.get("RECSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield materialized_home(tmp_path)
        return
    project = f"recserve_test_{uuid.uuid4().hex}"
    yield materialized_home(tmp_path, redis_url=REDIS_URL, feast={"project": project})
    with redis.Redis.from_url(REDIS_URL) as connection:
        keys = list(connection.scan_iter(match=f"*{project}".encode()))
        if keys:
            connection.delete(*keys)


def test_written_rows_are_what_serving_reads_next(settings: Settings) -> None:
    store = FeastBehaviourStore.from_settings(settings)
    serving = FeastFeatureClient.from_settings(settings)
    try:
        before = serving.get_user("u1")
        assert before is not None
        # Unchanged since: decoded once, remembered by its stored bytes.
        again = serving.get_user("u1")
        assert again is not None
        assert again.history_items is before.history_items
        rows = store.read(["u1", "newcomer", "u1"])
        assert set(rows) == {"u1", "newcomer"}
        assert rows["newcomer"] is None
        u1 = rows["u1"]
        assert u1 is not None
        assert u1.history.items == U1.history_items  # ties (i1, i3) kept in id order
        assert u1.history.times == U1.history_timestamps

        # i2 seen again and i9 new, both later than the stored history.
        latest = {"i2": A - 5 * DAY, "i9": A - DAY}
        updated = replace(u1, history=u1.history.merged(latest, 2000), interaction_count=6)
        fresh = BehaviourRow("newcomer", u1.history.merged({"i7": A}, 2000))
        store.write([updated, fresh], datetime.now(UTC))

        after = serving.get_user("u1")
        assert after is not None
        assert after.history_items == ("i1", "i3", "i2", "i9")
        assert after.history_timestamps == (A - 10 * DAY, A - 10 * DAY, A - 5 * DAY, A - DAY)
        assert after.interaction_count == 6
        # Untouched by the write: the other views and the batch-only behaviour features.
        assert after.top_categories == U1.top_categories
        assert after.attribute_tokens == U1.attribute_tokens
        assert after.segment == U1.segment
        newcomer = serving.get_user("newcomer")
        assert newcomer is not None
        assert newcomer.history_items == ("i2", "i1", "i3", "i7")
    finally:
        store.close()
        serving.close()
