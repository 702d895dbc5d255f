"""``POST /events`` through the real ASGI app: real SQLite event log, real Feast push, real
ONNX model, on a copy of the session's built home (events change its state)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.events.log import open_event_log
from app.events.types import LoggedEvent
from app.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home_copy(built_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    target = tmp_path_factory.mktemp("events") / "home"
    shutil.copytree(built_home.home, target)
    return Settings(home=target)


@pytest.fixture(scope="module")
def client(home_copy: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(home_copy)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def interactions(home_copy: Settings) -> pd.DataFrame:
    return pd.read_parquet(home_copy.data_dir / "interactions.parquet")


def _event(event_id: str, user_id: str, item_id: str, kind: str = "view", **extra: object) -> dict:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "item_id": item_id,
        "type": kind,
        "timestamp": time.time(),
        **extra,
    }


def _logged(settings: Settings) -> list[LoggedEvent]:
    async def read_all() -> list[LoggedEvent]:
        log = open_event_log(settings)
        try:
            return await log.iter_all()
        finally:
            await log.close()

    return asyncio.run(read_all())


def test_mixed_batch_answers_each_event(client: TestClient) -> None:
    batch = [
        _event("mix-ok", "mix-user", "sku-000001"),
        _event("mix-bad-time", "mix-user", "sku-000002", timestamp="yesterday-ish"),
        _event("mix-bad-type", "mix-user", "sku-000003", kind="teleport"),
    ]
    response = client.post("/events", json={"events": batch})
    body = response.json()
    assert response.status_code == 200
    assert body["accepted"] == ["mix-ok"]
    assert body["duplicates"] == []
    reasons = {r["event_id"]: (r["index"], r["reason"]) for r in body["rejected"]}
    assert reasons["mix-bad-time"][0] == 1
    assert reasons["mix-bad-time"][1].startswith("timestamp:")
    assert reasons["mix-bad-type"][0] == 2
    assert reasons["mix-bad-type"][1].startswith("type:")
    assert (body["accepted_count"], body["duplicate_count"], body["rejected_count"]) == (1, 0, 2)
    metrics = client.get("/metrics").text
    assert 'recserve_events_total{outcome="accepted",type="view"}' in metrics
    assert 'recserve_events_total{outcome="rejected",type="invalid"}' in metrics


def test_same_event_id_twice_is_a_duplicate(client: TestClient) -> None:
    event = _event("dup-1", "dup-user", "sku-000004")
    first = client.post("/events", json={"events": [event]}).json()
    second = client.post("/events", json={"events": [event, event]}).json()
    assert first["accepted"] == ["dup-1"]
    assert second["accepted"] == []
    assert second["duplicates"] == ["dup-1", "dup-1"]


def test_within_batch_repeat_is_a_duplicate(client: TestClient) -> None:
    event = _event("dup-2", "dup-user", "sku-000005")
    body = client.post("/events", json={"events": [event, event]}).json()
    assert body["accepted"] == ["dup-2"]
    assert body["duplicates"] == ["dup-2"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"events": "not-a-list"}, "events"),
        ({}, "events"),
    ],
)
def test_malformed_envelope_is_422_naming_the_field(
    client: TestClient, payload: dict[str, object], field: str
) -> None:
    response = client.post("/events", json=payload)
    assert response.status_code == 422
    assert any(field in err["loc"] for err in response.json()["detail"])


def test_batch_over_the_limit_is_413_naming_the_field(client: TestClient) -> None:
    response = client.post("/events", json={"events": [{}] * 1001})
    assert response.status_code == 413
    assert any("events" in err["loc"] for err in response.json()["detail"])


def test_purchases_are_reflected_by_the_next_recommendation(
    client: TestClient, interactions: pd.DataFrame
) -> None:
    user_id = sorted(interactions["user_id"].unique())[5]
    params = {"user_id": user_id, "k": 10}
    before = client.get("/recommend", params=params).json()
    assert client.get("/recommend", params=params).json()["cache"] == "local"
    bought = [item["item_id"] for item in before["items"][:3]]
    seen = set(interactions.loc[interactions["user_id"] == user_id, "item_id"])
    assert not set(bought) & seen
    batch = [
        _event(f"ryw-{i}", user_id, item, "purchase", value=9.5) for i, item in enumerate(bought)
    ]
    assert client.post("/events", json={"events": batch}).json()["accepted_count"] == 3

    after = client.get("/recommend", params=params).json()
    returned = [item["item_id"] for item in after["items"]]
    assert after["cache"] is None
    assert after["source"] == "personalized"
    assert not set(returned) & set(bought)
    assert returned != [item["item_id"] for item in before["items"]]


def test_unknown_user_becomes_personalized(client: TestClient) -> None:
    params = {"user_id": "brand-new-user", "k": 5}
    assert client.get("/recommend", params=params).json()["source"] == "popular"
    batch = [_event("new-1", "brand-new-user", "sku-000010", "click")]
    assert client.post("/events", json={"events": batch}).json()["accepted"] == ["new-1"]
    after = client.get("/recommend", params=params).json()
    assert after["source"] == "personalized"
    assert "sku-000010" not in [item["item_id"] for item in after["items"]]


def test_impressions_are_logged_but_not_history(client: TestClient) -> None:
    params = {"user_id": "impression-only-user", "k": 5}
    batch = [_event("imp-1", "impression-only-user", "sku-000011", "impression")]
    assert client.post("/events", json={"events": batch}).json()["accepted"] == ["imp-1"]
    assert client.get("/recommend", params=params).json()["source"] == "popular"


def test_accepted_events_are_in_the_durable_log(client: TestClient, home_copy: Settings) -> None:
    batch = [_event("durable-1", "log-user", "sku-000012", "add_to_cart", context={"page": 2})]
    client.post("/events", json={"events": batch})
    stored = {logged.event.event_id: logged.event for logged in _logged(home_copy)}
    assert stored["durable-1"].type == "add_to_cart"
    assert stored["durable-1"].context == {"page": 2}
    assert "mix-bad-time" not in stored


def test_readyz_reports_the_event_log(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["dependencies"]["event_log"]["ok"] is True


def test_unavailable_log_is_503_and_acknowledges_nothing(
    built_home: Settings, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    shutil.copytree(built_home.home, settings.home)
    # A directory where the database file should be: SQLite cannot open it.
    shutil.rmtree(settings.events_dir, ignore_errors=True)
    (settings.events_dir / "events.db").mkdir(parents=True)
    with TestClient(create_app(settings)) as broken:
        response = broken.post("/events", json={"events": [_event("lost-1", "u", "sku-1")]})
        ready = broken.get("/readyz").json()
    assert response.status_code == 503
    assert "event log unavailable, nothing was stored" in response.json()["message"]
    assert ready["degraded"] is True
    assert ready["dependencies"]["event_log"]["ok"] is False


def test_failed_profile_update_still_acknowledges_logged_events(
    built_home: Settings, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    shutil.copytree(built_home.home, settings.home)
    with TestClient(create_app(settings)) as degraded:
        (settings.feast_dir / "online.db").unlink()  # the online store disappears
        response = degraded.post("/events", json={"events": [_event("kept-1", "u1", "sku-1")]})
        metrics = degraded.get("/metrics").text
    assert response.status_code == 200
    assert response.json()["accepted"] == ["kept-1"]
    assert [logged.event.event_id for logged in _logged(settings)] == ["kept-1"]
    failures = [
        line
        for line in metrics.splitlines()
        if line.startswith("recserve_events_profile_update_failures_total ")
    ]
    assert failures
    assert float(failures[0].split()[1]) >= 1
