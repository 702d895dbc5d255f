"""Access control, body limits and CORS through the real ASGI app (real model and Feast)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.settings import ApiKeySpec, ApiSettings, AuthSettings, Settings

pytestmark = pytest.mark.integration

EVENTS_KEY = "ev-0123456789abcdef"
RECOMMEND_KEY = "rc-0123456789abcdef"
ADMIN_KEY = "ad-0123456789abcdef"
KEYS = [
    ApiKeySpec(name="ingest", key=EVENTS_KEY, scopes=["events"]),
    ApiKeySpec(name="frontend", key=RECOMMEND_KEY, scopes=["recommend"]),
    ApiKeySpec(name="ops", key=ADMIN_KEY, scopes=["admin"]),
]
EMPTY_BATCH = {"events": []}  # authorised or not, it changes nothing in the shared home


def _client(settings: Settings, **auth: object) -> TestClient:
    return TestClient(
        create_app(settings.model_copy(update={"auth": AuthSettings(keys=KEYS, **auth)}))
    )


@pytest.fixture(scope="module")
def keyed(built_home: Settings) -> Iterator[TestClient]:
    with _client(built_home) as client:
        yield client


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("headers", [{}, _bearer("nope-0123456789abcdef"), {"X-API-Key": "x"}])
def test_missing_or_unknown_key_is_401_with_a_challenge(
    keyed: TestClient, headers: dict[str, str]
) -> None:
    response = keyed.post("/events", json=EMPTY_BATCH, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_known_key_without_the_scope_is_403(keyed: TestClient) -> None:
    response = keyed.post("/events", json=EMPTY_BATCH, headers=_bearer(RECOMMEND_KEY))
    assert response.status_code == 403
    assert "'frontend' lacks the 'events' scope" in response.json()["message"]


@pytest.mark.parametrize("headers", [_bearer(EVENTS_KEY), {"X-API-Key": EVENTS_KEY}])
def test_key_with_the_scope_passes_in_either_header(
    keyed: TestClient, headers: dict[str, str]
) -> None:
    response = keyed.post("/events", json=EMPTY_BATCH, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == []


def test_recommend_is_keyed_by_default(keyed: TestClient) -> None:
    params = {"user_id": "someone", "k": 3}
    assert keyed.get("/recommend", params=params).status_code == 401
    assert keyed.get("/items/x/similar").status_code == 401
    ok = keyed.get("/recommend", params=params, headers=_bearer(RECOMMEND_KEY))
    assert ok.status_code == 200
    assert len(ok.json()["items"]) == 3
    assert keyed.get("/recommend", params=params, headers=_bearer(EVENTS_KEY)).status_code == 403


def test_admin_routes_need_the_admin_scope(keyed: TestClient) -> None:
    assert keyed.post("/admin/models/reload").status_code == 401
    assert keyed.post("/admin/models/reload", headers=_bearer(EVENTS_KEY)).status_code == 403
    response = keyed.post("/admin/models/reload", headers=_bearer(ADMIN_KEY))
    assert response.status_code == 200
    assert response.json()["outcome"] == "unchanged"


def test_health_and_metrics_stay_open(keyed: TestClient) -> None:
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code == 200
    assert keyed.get("/metrics").status_code == 200


def test_open_recommend_and_keyed_metrics_by_setting(built_home: Settings) -> None:
    with _client(built_home, open_recommend=True, open_metrics=False) as client:
        assert client.get("/recommend", params={"user_id": "someone"}).status_code == 200
        assert client.post("/events", json=EMPTY_BATCH).status_code == 401  # writes still keyed
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=_bearer(EVENTS_KEY)).status_code == 403
        assert client.get("/metrics", headers=_bearer(ADMIN_KEY)).status_code == 200


def test_openapi_declares_both_key_headers(keyed: TestClient) -> None:
    schemes = keyed.get("/openapi.json", headers=_bearer(ADMIN_KEY)).json()["components"][
        "securitySchemes"
    ]
    assert {scheme["type"] for scheme in schemes.values()} == {"http", "apiKey"}


@pytest.fixture(scope="module")
def limited(built_home: Settings) -> Iterator[TestClient]:
    api = ApiSettings(max_body_bytes=2048, cors_origins=["https://shop.example"])
    with TestClient(create_app(built_home.model_copy(update={"api": api}))) as client:
        yield client


def test_body_over_the_limit_is_413_by_content_length(limited: TestClient) -> None:
    body = b'{"user_id": "u", "exclude": ["' + b"x" * 4096 + b'"]}'
    response = limited.post(
        "/recommend", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_streamed_body_over_the_limit_is_413(limited: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"events": ['
        for _ in range(100):
            yield b'{"event_id": "e", "user_id": "u", "item_id": "i"},'
        yield b"{}]}"

    response = limited.post(
        "/events", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_body_under_the_limit_passes(limited: TestClient) -> None:
    response = limited.post("/recommend", json={"user_id": "u", "k": 2})
    assert response.status_code == 200


def test_cors_allows_only_the_configured_origins(limited: TestClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key",
    }
    allowed = limited.options("/events", headers={"Origin": "https://shop.example", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    refused = limited.options("/events", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in refused.headers
    simple = limited.get(
        "/recommend", params={"user_id": "u"}, headers={"Origin": "https://shop.example"}
    )
    assert simple.headers["access-control-allow-origin"] == "https://shop.example"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


def test_405_lists_every_method_of_the_path(keyed: TestClient) -> None:
    response = keyed.request("PATCH", "/recommend")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_openapi_lists_the_auth_and_body_errors(keyed: TestClient) -> None:
    paths = keyed.get("/openapi.json", headers=_bearer(ADMIN_KEY)).json()["paths"]
    assert {"400", "401", "403", "413", "422"} <= set(paths["/events"]["post"]["responses"])
    assert set(paths["/healthz"]["get"]["responses"]) == {"200", "400", "431"}


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_api_documents_need_the_admin_key_unless_opened(
    keyed: TestClient, built_home: Settings, path: str
) -> None:
    assert keyed.get(path).status_code == 401
    assert keyed.get(path, headers=_bearer(RECOMMEND_KEY)).status_code == 403
    assert keyed.get(path, headers=_bearer(ADMIN_KEY)).status_code == 200
    with _client(built_home, open_docs=True) as client:
        assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/recommend/", "/events/", "/users/u1/consent/"])
def test_no_slash_redirect_answers_before_the_key_check(keyed: TestClient, path: str) -> None:
    response = keyed.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers


def test_cart_recommendations_need_the_recommend_scope_too(keyed: TestClient) -> None:
    batch = {
        "events": [
            {
                "event_id": "scope-cart-1",
                "user_id": "scope-user",
                "item_id": "sku-000001",
                "type": "add_to_cart",
                "timestamp": 1_700_000_000,
            }
        ],
        "return_recommendations": True,
    }
    refused = keyed.post("/events", json=batch, headers=_bearer(EVENTS_KEY))
    assert refused.status_code == 403
    assert "recommend" in refused.json()["message"]
    # Refused before anything was stored (the shared home stays as it was).
    log = keyed.app.state.services.events.event_log  # type: ignore[attr-defined]
    stored = keyed.portal.call(log.iter_all)  # type: ignore[union-attr]
    assert "scope-cart-1" not in {logged.event.event_id for logged in stored}


def test_feedback_needs_the_events_scope_not_the_public_recommend_key(keyed: TestClient) -> None:
    said = {"user_id": "someone", "kind": "not_interested", "item_id": "any-item"}
    refused = keyed.post("/feedback", json=said, headers=_bearer(RECOMMEND_KEY))
    assert refused.status_code == 403
    assert "lacks the 'events' scope" in refused.json()["message"]
    stored = keyed.post("/feedback", json=said, headers=_bearer(EVENTS_KEY))
    assert stored.status_code == 200, stored.text
