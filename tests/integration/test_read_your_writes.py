"""Read-your-writes across uvicorn workers: an event posted to one worker is reflected by the
next answer of every worker, though each had the user's list in its in-process cache tier."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.settings import Settings
from tests.integration.conftest import PrivateRedis, serve, users_with_history
from tests.integration.test_redis_outage import redis_home  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

WARM_UP_REQUESTS = 1000
# Requests in flight at once while warming: one at a time, the kernel can hand a long run of
# accepts (1,000 seen) to the same worker and leave the other one cold.
WARM_UP_PARALLEL = 4
# Consecutive in-process hits after both workers have answered: each worker holds the list.
LOCAL_HITS_IN_A_ROW = 10
CHECKS = 20


def recommended_items(http: httpx.Client, user_id: str, k: int = 10) -> tuple[list[str], object]:
    """The items recommended to ``user_id`` and the cache tier that answered (None: computed)."""
    response = http.get("/recommend", params={"user_id": user_id, "k": k})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "personalized", body
    return [item["item_id"] for item in body["items"]], body["cache"]


def purchases(user_id: str, item_ids: list[str]) -> dict[str, list[dict[str, object]]]:
    """A ``POST /events`` body: ``user_id`` bought each of ``item_ids`` just now."""
    events = [
        {
            "event_id": f"rw-{uuid.uuid4().hex}",
            "user_id": user_id,
            "item_id": item_id,
            "type": "purchase",
            "timestamp": time.time(),
            "value": 9.5,
        }
        for item_id in item_ids
    ]
    return {"events": events}


def _warm_both_workers(http: httpx.Client, user_id: str) -> list[str]:
    """Ask until both workers hold the user's list locally; the list."""
    # Alone first, so that one worker computes the list and the other finds it in Redis.
    tiers_seen: set[object] = {recommended_items(http, user_id)[1]}
    in_a_row = 0
    with ThreadPoolExecutor(max_workers=WARM_UP_PARALLEL) as pool:
        for _ in range(WARM_UP_REQUESTS // WARM_UP_PARALLEL):
            answers = pool.map(lambda _: recommended_items(http, user_id), range(WARM_UP_PARALLEL))
            for items, tier in answers:
                tiers_seen.add(tier)
                in_a_row = in_a_row + 1 if tier == "local" else 0
                # None: the first worker computed it; "redis": a second worker filled its own
                # local tier from the shared one.
                if {None, "redis"} <= tiers_seen and in_a_row >= LOCAL_HITS_IN_A_ROW:
                    return items
    raise AssertionError(f"both workers never cached the list; tiers seen: {tiers_seen}")


def test_events_reach_every_worker_local_cache(
    redis_home: Settings,  # noqa: F811 (fixture)
    private_redis: PrivateRedis,
) -> None:
    user = users_with_history(redis_home)[0]
    with (
        serve(redis_home.home, workers=2, redis_url=private_redis.url) as server,
        # A new connection per request: the kernel hands each to whichever worker accepts.
        httpx.Client(
            base_url=server.base_url,
            timeout=5.0,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as http,
    ):
        bought = _warm_both_workers(http, user)[:3]
        response = http.post("/events", json=purchases(user, bought))
        assert response.status_code == 200, response.text
        assert len(response.json()["accepted"]) == 3

        answers = [recommended_items(http, user) for _ in range(CHECKS)]

    assert [set(bought) & set(items) for items, _ in answers] == [set()] * CHECKS
    # The first answer after the write cannot come from a worker's in-process tier.
    assert answers[0][1] != "local"
