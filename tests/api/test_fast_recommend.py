"""``GET /recommend``'s fast path (``app.api.fast_recommend``): answers exactly as FastAPI's
own handling of the route does, and leaves everything it does not handle to FastAPI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.datastructures import QueryParams
from starlette.types import Message, Receive, Scope, Send

from app.api.deps import get_settings
from app.api.fast_recommend import parse_query
from app.api.main import create_app
from app.api.schemas.recommend import RecommendQuery
from app.settings import Settings

pytestmark = pytest.mark.integration

# Differ on every answer, whichever path made it.
PER_REQUEST_FIELDS = {"request_id", "recommendation_id"}
PER_REQUEST_HEADERS = {"x-request-id", "x-recommendation-id", "traceparent", "x-trace-id"}


@pytest.fixture(scope="module")
def app(built_home: Settings) -> FastAPI:
    # No cache: both paths compute afresh, so their answers can be compared whole.
    uncached = built_home.cache.model_copy(update={"enabled": False})
    return create_app(built_home.model_copy(update={"cache": uncached}))


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def known_user(built_home: Settings) -> str:
    users = pd.read_parquet(built_home.data_dir / "interactions.parquet", columns=["user_id"])
    return str(users["user_id"].iloc[0])


def _through_fastapi(app: FastAPI, client: TestClient, params: Any) -> httpx.Response:
    # The fast path leaves an app with dependency overrides to FastAPI; this one changes nothing.
    app.dependency_overrides[get_settings] = get_settings
    try:
        return client.get("/recommend", params=params)
    finally:
        app.dependency_overrides.clear()


def _stable(response: httpx.Response) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = {k: v for k, v in response.json().items() if k not in PER_REQUEST_FIELDS}
    headers = {k: v for k, v in response.headers.items() if k not in PER_REQUEST_HEADERS}
    return response.status_code, body, headers


@pytest.mark.parametrize(
    "extra",
    [
        {"k": "5"},
        {"exclude": ["1", "2", "50"], "device": "ios", "segment": "s1", "k": "20"},
        {"k": "3", "category": "books", "price_max": "80", "fields": "title,price"},
        {"explain": "true", "k": "2"},
    ],
)
def test_fast_path_answers_as_fastapi_does(
    app: FastAPI, client: TestClient, known_user: str, extra: dict[str, Any]
) -> None:
    params = {"user_id": known_user, **extra}

    fast = client.get("/recommend", params=params)
    slow = _through_fastapi(app, client, params)

    assert fast.status_code == 200, fast.text
    assert _stable(fast) == _stable(slow)


def test_unknown_user_answers_as_fastapi_does(app: FastAPI, client: TestClient) -> None:
    params = {"user_id": "never seen + ü/&?"}

    assert _stable(client.get("/recommend", params=params)) == _stable(
        _through_fastapi(app, client, params)
    )


def _asgi_get(
    client: TestClient, app: FastAPI, query: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Message], bool]:
    """Drive the app with FastAPI's own handling replaced by a probe: the messages sent, and
    whether the request was passed on to FastAPI."""
    passed_on = False

    async def fastapi_call(self: FastAPI, scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal passed_on
        passed_on = True

    monkeypatch.setattr(FastAPI, "__call__", fastapi_call)

    async def drive() -> list[Message]:
        messages: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            messages.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/recommend",
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"host", b"testserver")],
        }
        await app(scope, receive, send)
        return messages

    assert client.portal is not None  # the app's own event loop, where its clients live
    return client.portal.call(drive), passed_on


def test_a_well_formed_get_is_answered_without_fastapi(
    app: FastAPI, client: TestClient, known_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = urlencode({"user_id": known_user, "k": 4})
    messages, passed_on = _asgi_get(client, app, query, monkeypatch)

    assert not passed_on
    assert messages[0]["status"] == 200
    # Inside the app's own middlewares: the trace context names the answer.
    assert {b"traceparent", b"x-request-id"} <= {name for name, _ in messages[0]["headers"]}
    assert b'"user_id":"' + known_user.encode() in messages[1]["body"]


@pytest.mark.parametrize(
    "query", ["k=5", "user_id=&k=5", "user_id=u&k=0", "user_id=u&k=x", "user_id=u&unknown=1"]
)
def test_a_query_that_fails_validation_is_left_to_fastapi(
    app: FastAPI, client: TestClient, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages, passed_on = _asgi_get(client, app, query, monkeypatch)

    assert passed_on
    assert messages == []


LIST_PARAMETERS = ("exclude", "category", "fields")


@pytest.mark.parametrize(
    "query",
    [
        "user_id=u1&k=7",
        "user_id=a+b%20c&k=%2B7",  # '+' and percent escapes, an int with a sign
        "user_id=first&user_id=last",  # a repeated scalar: the last value
        "user_id=u&exclude=a&exclude=&exclude=b",  # a list keeps every value, blanks too
        "user_id=u&explain=yes&device=web",
        "user_id=u&category=a&category=b&fields=title,price&price_max=9&in_stock=false",
    ],
)
def test_parse_query_reads_the_query_as_starlette_and_pydantic_do(query: str) -> None:
    params = QueryParams(query)
    expected = RecommendQuery.model_validate(
        {
            **{name: params[name] for name in params if name in RecommendQuery.model_fields},
            **{name: params.getlist(name) for name in LIST_PARAMETERS if name in params},
        }
    )

    assert parse_query(query.encode()) == expected
