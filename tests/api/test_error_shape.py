"""Every error the API answers has one JSON shape and never repeats the client's payload."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

SHAPE = {"status", "error", "message", "detail", "request_id"}
MIB = 1024 * 1024


def _event(n: int) -> dict[str, object]:
    return {
        "event_id": f"echo-me-{n}-{uuid.uuid4().hex}",
        "user_id": "u0000001",
        "item_id": "sku-000001",
        "type": "view",
        "timestamp": 1767225600,
    }


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The body of ``response``, checked to be an error of ``status`` in the one shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body.keys() == SHAPE
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["detail"], list)
    assert body["detail"]
    for entry in body["detail"]:
        assert {"loc", "msg", "type"} <= entry.keys()
        assert "input" not in entry
    return body


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/no-such-route", {}, 404),
        ("DELETE", "/recommend", {}, 405),
        ("GET", "/recommend", {"params": {"k": 5}}, 422),
        ("POST", "/recommend", {"json": {"user_id": "u1", "colour": "red"}}, 422),
        ("GET", "/experiments/nope/report", {}, 404),
        ("GET", "/items/no-such-item/similar", {}, 404),
    ],
)
def test_errors_share_one_json_shape(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    assert_error(client.request(method, path, **kwargs), status)


def test_a_body_without_a_json_content_type_says_json_is_required(client: TestClient) -> None:
    for headers in ({"content-type": "text/plain"}, {}):
        response = client.post("/recommend", content=b'{"user_id": "u1"}', headers=headers)
        body = assert_error(response, 415)
        assert "application/json" in body["message"]


def test_an_oversized_batch_is_413_naming_the_field_without_echoing_it(
    client: TestClient,
) -> None:
    response = client.post("/events", json={"events": [_event(n) for n in range(1001)]})
    body = assert_error(response, 413)
    assert body["detail"][0]["loc"] == ["body", "events"]
    assert body["detail"][0]["ctx"] == {"max_length": 1000}
    assert "echo-me" not in response.text
    assert len(response.content) < 1000


def test_validation_errors_do_not_echo_the_value(client: TestClient) -> None:
    secret = "s3cret-" + "x" * 300
    response = client.post("/recommend", json={"user_id": secret})
    assert_error(response, 422)
    assert "s3cret" not in response.text


def test_a_body_over_the_limit_is_a_json_413_declared_or_streamed(client: TestClient) -> None:
    payload = b'{"events": [' + b" " * (MIB + 10) + b"]}"
    declared = client.post("/events", content=payload, headers={"content-type": "application/json"})
    assert "over the 1048576-byte limit" in assert_error(declared, 413)["message"]

    def chunks() -> Iterator[bytes]:
        yield payload[: MIB // 2]
        yield payload[MIB // 2 :]

    streamed = client.post(
        "/events", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(streamed, 413)
