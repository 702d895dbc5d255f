"""``/users/{user_id}/profile`` through the real ASGI app on a copy of the built home."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.features.schema import USER_SEGMENTS_VIEW
from app.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def segments(home: Settings) -> dict[str, str]:
    table = pd.read_parquet(home.offline_dir / f"{USER_SEGMENTS_VIEW}.parquet")
    return dict(zip(table["user_id"], table["segment"], strict=True))


def test_known_user_profile_has_attributes_behaviour_and_segment(
    client: TestClient, home: Settings, segments: dict[str, str]
) -> None:
    interactions = pd.read_parquet(home.data_dir / "interactions.parquet")
    user_id = str(interactions["user_id"].iloc[0])
    mine = interactions[interactions["user_id"] == user_id].sort_values("timestamp")

    response = client.get(f"/users/{user_id}/profile")

    assert response.status_code == 200
    body = response.json()
    assert body["segment"] == segments[user_id]
    assert body["segment"].startswith("s")
    assert body["attributes"]
    assert body["attribute_tokens"]
    behaviour = body["behaviour"]
    assert behaviour["interaction_count"] == len(mine)
    assert behaviour["recent_items"][0] == str(mine["item_id"].iloc[-1])
    shares = [c["share"] for c in behaviour["top_categories"]]
    assert shares == sorted(shares, reverse=True)
    assert 0 < sum(shares) <= 1.0001


def test_an_event_shows_in_the_profile_at_once(client: TestClient, home: Settings) -> None:
    items = pd.read_parquet(home.data_dir / "items.parquet")["item_id"].astype(str)
    interactions = pd.read_parquet(home.data_dir / "interactions.parquet")
    user_id = str(interactions["user_id"].iloc[-1])
    before = client.get(f"/users/{user_id}/profile").json()["behaviour"]
    new_item = next(i for i in items if i not in set(before["recent_items"]))
    event = {
        "event_id": f"profile-{time.time_ns()}",
        "user_id": user_id,
        "item_id": new_item,
        "type": "view",
        "timestamp": time.time(),
    }
    observed_before = _freshness_count()
    assert client.post("/events", json={"events": [event]}).status_code == 200

    after = client.get(f"/users/{user_id}/profile").json()["behaviour"]

    assert after["recent_items"][0] == new_item
    assert after["interaction_count"] == before["interaction_count"] + 1
    assert _freshness_count() == observed_before + 1  # its event-to-visible time was measured


def _freshness_count() -> float:
    value = REGISTRY.get_sample_value("recserve_event_freshness_seconds_count")
    return value or 0.0


def test_attribute_only_user_is_in_the_new_segment(
    client: TestClient, segments: dict[str, str]
) -> None:
    new_users = [u for u, s in segments.items() if s == "new"]
    assert new_users, "the synthetic shop has users with attributes and no events"
    body = client.get(f"/users/{new_users[0]}/profile").json()
    assert body["segment"] == "new"
    assert body["behaviour"]["recent_items"] == []


def test_unknown_user_is_404_naming_the_user(client: TestClient) -> None:
    response = client.get("/users/nobody-at-all/profile")
    assert response.status_code == 404
    assert "nobody-at-all" in response.json()["message"]
