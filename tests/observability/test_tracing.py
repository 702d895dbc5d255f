"""Trace context and request ids on every response, through the real app and a bare route."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.api.main import create_app
from app.api.middleware import TraceContextMiddleware
from app.observability.logging import JsonFormatter
from app.observability.tracing import start_span
from app.settings import Settings

REQUEST_ID = re.compile(r"[0-9a-f]{32}")
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def client(built_home: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(built_home)) as test_client:
        yield test_client


def ids(headers: object) -> tuple[str, str, str]:
    """(trace id, span id, flags) of a response's ``traceparent``, checked against X-Trace-ID."""
    match = TRACEPARENT.fullmatch(headers["traceparent"])  # type: ignore[index]
    assert match is not None
    assert headers["x-trace-id"] == match.group(1)  # type: ignore[index]
    return match.group(1), match.group(2), match.group(3)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/recommend?k=5", 422),  # no user id
        ("GET", "/no-such-route", 404),
    ],
)
def test_every_response_names_a_new_trace(
    client: TestClient, method: str, path: str, status: int
) -> None:
    first = client.request(method, path)
    second = client.request(method, path)
    assert first.status_code == status
    assert ids(first.headers)[0] != ids(second.headers)[0]
    assert ids(first.headers)[2] == "00"  # not sampled: nothing records spans here
    assert first.headers["x-request-id"]


def test_a_callers_traceparent_is_continued_with_a_new_span(client: TestClient) -> None:
    response = client.get("/healthz", headers={"traceparent": CALLER})
    trace_id, span_id, flags = ids(response.headers)
    assert (trace_id, flags) == ("4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert span_id != "00f067aa0ba902b7"
    assert REQUEST_ID.fullmatch(response.headers["x-request-id"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/recommend?user_id=u-nobody&k=3"),
        ("POST", "/recommend"),
        ("GET", "/content-blocks/no-such-slot?user_id=u1"),
        ("GET", "/healthz"),
        ("GET", "/no-such-route"),
    ],
)
def test_every_route_names_requests_one_way_and_honours_the_callers_id(
    client: TestClient, method: str, path: str
) -> None:
    body = {"user_id": "u-nobody", "k": 3} if method == "POST" else None
    own = client.request(method, path, json=body)
    assert own.headers.get_list("x-request-id") == [own.headers["x-request-id"]]
    assert REQUEST_ID.fullmatch(own.headers["x-request-id"])
    callers = client.request(method, path, json=body, headers={"X-Request-ID": "shop-7f3a:42"})
    assert callers.headers.get_list("x-request-id") == ["shop-7f3a:42"]
    if path.startswith("/recommend"):
        assert own.json()["request_id"] == own.headers["x-request-id"]
        assert callers.json()["request_id"] == "shop-7f3a:42"
        assert callers.json()["recommendation_id"] != "shop-7f3a:42"
    else:
        assert callers.json().get("request_id", "shop-7f3a:42") == "shop-7f3a:42"


@pytest.mark.parametrize(
    "header",
    [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # v00 has 4 fields
        "garbage",
    ],
)
def test_an_invalid_traceparent_starts_a_new_trace(header: str) -> None:
    context = start_span(header, None)
    assert context.trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"
    assert TRACEPARENT.fullmatch(context.traceparent)


def test_a_later_version_traceparent_is_continued() -> None:
    context = start_span(CALLER.replace("00-", "01-", 1) + "-what-comes-later", None)
    assert context.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_well_formed_request_id_is_kept_and_a_bad_one_replaced() -> None:
    assert start_span(None, "req-42.a:b").request_id == "req-42.a:b"
    for bad in ("no spaces or \n newlines", "x" * 129, "", "semi;colon"):
        replaced = start_span(None, bad)
        assert REQUEST_ID.fullmatch(replaced.request_id), bad


def test_logs_inside_a_request_carry_its_ids_and_an_unhandled_error_is_a_500_with_them() -> None:
    def fail(request: Request) -> PlainTextResponse:
        logging.getLogger("test.route").warning("about to fail")
        raise RuntimeError("boom")

    def fine(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    # As in the real app: Starlette's ServerErrorMiddleware outside, the route inside.
    app = Starlette(
        routes=[Route("/fail", fail), Route("/fine", fine)],
        middleware=[Middleware(TraceContextMiddleware)],
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with TestClient(app) as test_client:
            response = test_client.get(
                "/fail", headers={"traceparent": CALLER, "x-request-id": "r1"}
            )
            assert test_client.get("/fine").status_code == 200
    finally:
        root.removeHandler(handler)
    assert response.status_code == 500
    assert response.json() == {
        "status": 500,
        "error": "internal_error",
        "message": "internal error",
        "detail": [{"loc": [], "msg": "internal error", "type": "internal_error"}],
        "request_id": "r1",
    }
    trace_id, _, _ = ids(response.headers)
    assert response.headers["x-request-id"] == "r1"

    # Only the route's and the middleware's lines: whatever level earlier tests left on the
    # root logger, the HTTP client's own request lines are not this test's subject.
    ours = {"test.route", "app.api.middleware"}
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    lines = [line for line in lines if line["logger"] in ours]
    assert [(line["msg"], line["request_id"], line["trace_id"]) for line in lines] == [
        ("about to fail", "r1", trace_id),
        ("unhandled error on GET /fail", "r1", trace_id),
    ]
    assert {"ts", "level", "logger"} <= lines[0].keys()
    assert "RuntimeError: boom" in lines[1]["exc"]
