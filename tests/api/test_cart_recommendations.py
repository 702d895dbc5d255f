"""``POST /events`` with ``return_recommendations``: complementary items for a cart page."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.settings import Settings

pytestmark = pytest.mark.integration


def _event(user_id: str, item_id: str, kind: str) -> dict[str, object]:
    return {
        "event_id": f"cart-{time.time_ns()}",
        "user_id": user_id,
        "item_id": item_id,
        "type": kind,
        "timestamp": time.time(),
    }


def _similar(client: TestClient, item_id: str) -> list[str]:
    response = client.get(f"/items/{item_id}/similar", params={"k": 100})
    return [i["item_id"] for i in response.json()["items"]]


def test_add_to_cart_returns_related_items_not_in_the_history(
    client: TestClient, home: Settings
) -> None:
    interactions = pd.read_parquet(home.data_dir / "interactions.parquet")
    user_id = str(interactions["user_id"].iloc[0])
    history = set(interactions.loc[interactions["user_id"] == user_id, "item_id"].astype(str))
    items = pd.read_parquet(home.data_dir / "items.parquet")["item_id"].astype(str)
    carted = next(i for i in items if i not in history)

    response = client.post(
        "/events",
        json={
            "events": [_event(user_id, carted, "add_to_cart")],
            "return_recommendations": True,
            "recommendations_k": 5,
        },
    )

    assert response.status_code == 200
    [answer] = response.json()["recommendations"]
    assert answer["user_id"] == user_id
    assert answer["trigger_items"] == [carted]
    returned = [i["item_id"] for i in answer["items"]]
    expected = [i for i in _similar(client, carted) if i not in history | {carted}][:5]
    assert returned == expected
    assert len(returned) == 5
    scores = [i["score"] for i in answer["items"]]
    assert scores == sorted(scores, reverse=True)


def test_two_triggers_blend_and_views_trigger_nothing(client: TestClient, home: Settings) -> None:
    items = pd.read_parquet(home.data_dir / "items.parquet")["item_id"].astype(str).tolist()
    user_id = "cart-newcomer"
    first, second = items[3], items[40]

    body = client.post(
        "/events",
        json={
            "events": [
                _event(user_id, first, "add_to_cart"),
                _event(user_id, second, "purchase"),
                _event("only-viewer", first, "view"),
            ],
            "return_recommendations": True,
        },
    ).json()

    [answer] = body["recommendations"]
    assert answer["trigger_items"] == [first, second]
    returned = {i["item_id"] for i in answer["items"]}
    assert not returned & {first, second}
    # Both carts contribute: some of each trigger's close neighbours are in the list.
    assert returned & set(_similar(client, second)[:10])
    assert returned & set(_similar(client, first)[:10])


def test_recommendations_only_when_asked(client: TestClient, home: Settings) -> None:
    items = pd.read_parquet(home.data_dir / "items.parquet")["item_id"].astype(str).tolist()
    body = client.post("/events", json={"events": [_event("u-x", items[0], "purchase")]}).json()
    assert body["recommendations"] == []
