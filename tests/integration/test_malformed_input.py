"""Malformed requests through the real server: 422 naming the field, never a 5xx."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration

LONG_ID = "u" * 300  # the limit is 256 characters

GET_CASES = [
    ({"user_id": "u0000001", "k": "abc"}, "k", "int_parsing"),
    ({"user_id": "u0000001", "k": "101"}, "k", "less_than_equal"),
    ({"user_id": "u0000001", "k": "0"}, "k", "greater_than_equal"),
    ({"k": "5"}, "user_id", "missing"),
    ({"user_id": ""}, "user_id", "string_too_short"),
    ({"user_id": LONG_ID}, "user_id", "string_too_long"),
]

POST_CASES = [
    ({"user_id": "u0000001", "colour": "red"}, "colour", "extra_forbidden"),
    ({"user_id": LONG_ID}, "user_id", "string_too_long"),
    ({"user_id": 42}, "user_id", "string_type"),
    ({"user_id": "u0000001", "k": "abc"}, "k", "int_parsing"),
    ({"user_id": "u0000001", "exclude": "sku-000001"}, "exclude", "list_type"),
    ({"k": 5}, "user_id", "missing"),
]


def _error_for(response: httpx.Response, field: str) -> dict[str, object]:
    """The validation error whose location ends with ``field``; fails if none does."""
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    named = [error for error in errors if error["loc"][-1] == field]
    assert named, f"no error names {field!r}: {errors}"
    error: dict[str, object] = named[0]
    return error


@pytest.mark.parametrize(("params", "field", "error_type"), GET_CASES)
def test_bad_query_is_422_naming_the_field(
    two_worker_server: httpx.Client, params: dict[str, str], field: str, error_type: str
) -> None:
    response = two_worker_server.get("/recommend", params=params)

    assert _error_for(response, field)["type"] == error_type


@pytest.mark.parametrize(("body", "field", "error_type"), POST_CASES)
def test_bad_json_body_is_422_naming_the_field(
    two_worker_server: httpx.Client, body: dict[str, object], field: str, error_type: str
) -> None:
    response = two_worker_server.post("/recommend", json=body)

    assert _error_for(response, field)["type"] == error_type


@pytest.mark.parametrize("content", [b"user_id=u0000001", b"{", b""])
def test_body_that_is_not_json_is_422(two_worker_server: httpx.Client, content: bytes) -> None:
    response = two_worker_server.post(
        "/recommend", content=content, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"


@pytest.mark.parametrize("user_id", ["\x00", "ünïcødé-🙂", "u0000001' OR 1=1 --", "a" * 256])
def test_odd_but_valid_user_ids_are_answered(two_worker_server: httpx.Client, user_id: str) -> None:
    response = two_worker_server.get("/recommend", params={"user_id": user_id, "k": 2})

    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == user_id
