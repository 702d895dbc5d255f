"""``recserve precompute``: the most active users' lists land in the shared Redis tier under
the keys a real server looks up, a user's new event or feedback still wins over them, and the
job keeps to its quiet hours."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.cli import main
from app.features.active_users import most_active_users
from app.serving.surfaces.precompute import in_quiet_hours
from app.settings import Settings
from tests.conftest import TEST_REDIS_URL, delete_redis_keys
from tests.integration.conftest import TWO_SLOTS, serve

pytestmark = [pytest.mark.integration, pytest.mark.redis]

TOP_USERS = 5
MAX_AGE_SECONDS = 7200
KEYS = "recserve:rec:*"


@pytest.fixture(scope="module")
def slots_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("precompute") / "slots.toml"
    path.write_text(TWO_SLOTS)
    return path


@pytest.fixture
def job_env(home: Settings, slots_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI's environment: the module's home, the cache's Redis, one page to precompute;
    no cached list left from an earlier test."""
    asyncio.run(delete_redis_keys(KEYS))
    for name, value in {
        "RECSERVE_HOME": str(home.home),
        "RECSERVE_REDIS_URLS__CACHE": TEST_REDIS_URL,
        "RECSERVE_CONTENT_SLOTS_FILE": str(slots_file),
        "RECSERVE_PRECOMPUTE__PAGES": '["for-you,trending"]',
        "RECSERVE_PRECOMPUTE__MAX_AGE_SECONDS": str(MAX_AGE_SECONDS),
    }.items():
        monkeypatch.setenv(name, value)
    yield
    asyncio.run(delete_redis_keys(KEYS))


async def _hashes(user_ids: list[str]) -> list[tuple[int, int]]:
    """(fields, seconds to live) of each user's cache hash."""
    async with Redis.from_url(TEST_REDIS_URL) as client:
        found = []
        for user_id in user_ids:
            key = f"recserve:rec:{user_id}"
            found.append((await client.hlen(key), await client.ttl(key)))  # type: ignore[misc]
        return found


def test_quiet_hours_include_their_start_and_may_wrap_midnight() -> None:
    def at(hour: int) -> datetime:
        return datetime(2026, 3, 1, hour, 30, tzinfo=UTC)

    assert [h for h in range(24) if in_quiet_hours(at(h), 2, 5)] == [2, 3, 4]
    assert [h for h in range(24) if in_quiet_hours(at(h), 22, 2)] == [0, 1, 22, 23]
    assert [h for h in range(24) if in_quiet_hours(at(h), 4, 4)] == []


@pytest.mark.usefixtures("job_env")
def test_outside_quiet_hours_nothing_is_computed(
    home: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hour = datetime.now(UTC).hour
    monkeypatch.setenv("RECSERVE_PRECOMPUTE__QUIET_START_HOUR", str((hour + 1) % 24))
    monkeypatch.setenv("RECSERVE_PRECOMPUTE__QUIET_END_HOUR", str((hour + 2) % 24))
    assert main(["precompute", "--users", str(TOP_USERS)]) == 0
    assert "outside quiet hours" in capsys.readouterr().out
    top = most_active_users(home.offline_dir, TOP_USERS)
    assert asyncio.run(_hashes(top)) == [(0, -2)] * TOP_USERS


def test_without_a_shared_tier_the_job_refuses(
    home: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECSERVE_HOME", str(home.home))
    assert main(["precompute", "--force"]) == 2
    assert "needs the shared cache tier" in capsys.readouterr().err


@pytest.mark.usefixtures("job_env")
def test_top_users_are_served_precomputed_until_their_next_event(
    home: Settings, slots_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["precompute", "--force", "--users", str(TOP_USERS)]) == 0
    assert f"for {TOP_USERS} users" in capsys.readouterr().out
    ranked = most_active_users(home.offline_dir, TOP_USERS + 1)
    top, next_one = ranked[:TOP_USERS], ranked[TOP_USERS]
    # One /recommend list and the page's personalised slot per user, living the max age.
    hashes = asyncio.run(_hashes([*top, next_one]))
    assert [fields for fields, _ in hashes] == [2] * TOP_USERS + [0]
    assert all(300 < ttl <= MAX_AGE_SECONDS for _, ttl in hashes[:TOP_USERS])

    env = {
        "RECSERVE_REDIS_URLS__CACHE": TEST_REDIS_URL,
        "RECSERVE_CONTENT_SLOTS_FILE": str(slots_file),
    }
    with serve(home.home, extra_env=env) as http:
        first = _recommend(http, top[0])
        assert first["cache"] == "redis"  # this server never computed it
        bought = [item["item_id"] for item in first["items"][:2]]
        posted = http.post("/events", json=_purchases(top[0], bought))
        assert posted.status_code == 200, posted.text

        after = _recommend(http, top[0])
        assert after["cache"] is None
        assert set(bought).isdisjoint(item["item_id"] for item in after["items"])
        # The other precomputed users keep theirs, until they say "not interested".
        second = _recommend(http, top[1])
        assert second["cache"] == "redis"
        unwanted = second["items"][0]["item_id"]
        said = {"user_id": top[1], "kind": "not_interested", "item_id": unwanted}
        assert http.post("/feedback", json=said).status_code == 200
        fresh = _recommend(http, top[1])
        assert fresh["cache"] is None
        assert unwanted not in [item["item_id"] for item in fresh["items"]]
        assert _recommend(http, top[2])["cache"] == "redis"


def _recommend(http: httpx.Client, user_id: str) -> dict[str, Any]:
    response = http.get("/recommend", params={"user_id": user_id})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _purchases(user_id: str, item_ids: list[str]) -> dict[str, list[dict[str, object]]]:
    return {
        "events": [
            {
                "event_id": f"pc-{uuid.uuid4().hex}",
                "user_id": user_id,
                "item_id": item_id,
                "type": "purchase",
                "timestamp": time.time(),
                "value": 5.0,
            }
            for item_id in item_ids
        ]
    }
