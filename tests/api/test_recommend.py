"""``/recommend`` through the real ASGI app: real Feast (SQLite), real ONNX model."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(built_home: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(built_home)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def seen(built_home: Settings) -> dict[str, set[str]]:
    inter = pd.read_parquet(built_home.data_dir / "interactions.parquet")
    return {u: set(g) for u, g in inter.groupby("user_id")["item_id"]}


def test_every_user_with_history_gets_k_distinct_unseen_items(
    client: TestClient, seen: dict[str, set[str]]
) -> None:
    for user_id, items in seen.items():
        body = client.get("/recommend", params={"user_id": user_id, "k": 10}).json()
        returned = [i["item_id"] for i in body["items"]]
        assert body["source"] == "personalized", user_id
        assert len(returned) == 10
        assert len(set(returned)) == 10
        assert not set(returned) & items, user_id
        scores = [i["score"] for i in body["items"]]
        assert scores == sorted(scores, reverse=True)


def test_unknown_user_gets_popular(client: TestClient) -> None:
    response = client.get("/recommend", params={"user_id": "never-seen ü/?", "k": 5})
    body = response.json()
    assert response.status_code == 200
    assert body["source"] == "popular"
    assert body["fallback_reason"] == "unknown_user"
    assert len(body["items"]) == 5
    assert response.headers["x-request-id"] == body["request_id"]


def test_user_with_attributes_but_no_history_gets_cold_start(
    client: TestClient, built_home: Settings, seen: dict[str, set[str]]
) -> None:
    users = pd.read_parquet(built_home.data_dir / "users.parquet")["user_id"]
    cold = [u for u in users if u not in seen]
    assert cold, "the synthetic shop should contain users without events"
    bodies = [client.get("/recommend", params={"user_id": u}).json() for u in cold[:20]]
    assert {b["source"] for b in bodies} == {"cold_start"}
    # Attributes must matter: different demographics should not all get the same list.
    assert len({tuple(i["item_id"] for i in b["items"]) for b in bodies}) > 1


def test_second_request_is_served_from_the_local_cache(
    client: TestClient, seen: dict[str, set[str]]
) -> None:
    user_id = sorted(seen)[1]
    first = client.get("/recommend", params={"user_id": user_id, "k": 7}).json()
    second = client.get("/recommend", params={"user_id": user_id, "k": 7}).json()
    assert first["cache"] is None
    assert second["cache"] == "local"
    assert second["items"] == first["items"]
    assert second["request_id"] != first["request_id"]


def test_post_excludes_the_given_items(client: TestClient, seen: dict[str, set[str]]) -> None:
    user_id = sorted(seen)[2]
    top = client.get("/recommend", params={"user_id": user_id, "k": 3}).json()["items"]
    dropped = [top[0]["item_id"], top[1]["item_id"]]
    body = client.post(
        "/recommend", json={"user_id": user_id, "k": 3, "exclude": dropped, "context": {"p": 1}}
    ).json()
    returned = [i["item_id"] for i in body["items"]]
    assert not set(returned) & set(dropped)
    assert returned[0] == top[2]["item_id"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"user_id": "u", "k": 0}, "k"),
        ({"user_id": "u", "k": 101}, "k"),
        ({"user_id": "u", "k": "ten"}, "k"),
        ({"k": 5}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "x" * 257}, "user_id"),
    ],
)
def test_bad_query_is_422_naming_the_field(
    client: TestClient, params: dict[str, object], field: str
) -> None:
    response = client.get("/recommend", params=params)
    assert response.status_code == 422
    assert any(err["loc"][-1] == field for err in response.json()["detail"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u", "k": 500}, "k"),
        ({"user_id": "u", "unexpected": 1}, "unexpected"),
        ({"user_id": "u", "exclude": "not-a-list"}, "exclude"),
        ({"k": 3}, "user_id"),
    ],
)
def test_bad_body_is_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    response = client.post("/recommend", json=body)
    assert response.status_code == 422
    assert any(err["loc"][-1] == field for err in response.json()["detail"])


def test_body_that_is_not_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/recommend", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_readyz_names_each_dependency(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["ready"] is True
    assert body["degraded"] is False
    assert set(body["dependencies"]) == {
        "model",
        "published_model",
        "feature_store",
        "cache_local",
        "consent_store",
        "event_log",
        "event_log_writes",
        "profile_updates",
    }


def test_metrics_count_requests_sources_and_fallbacks(client: TestClient) -> None:
    client.get("/recommend", params={"user_id": "metrics-unknown-user"})
    text = client.get("/metrics").text
    assert 'recserve_api_request_seconds_bucket{endpoint="/recommend"' in text
    assert 'source="popular"' in text
    assert 'recserve_serving_fallbacks_total{reason="unknown_user"}' in text
    assert 'recserve_cache_lookups_total{result="miss",tier="local"}' in text
    assert "recserve_model_info{" in text
    assert "recserve_features_fetch_seconds_count" in text


def test_openapi_documents_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/recommend", "/healthz", "/readyz", "/metrics"):
        for operation in spec["paths"][path].values():
            assert operation.get("description"), path
