"""``GET /recommend`` without FastAPI's per-request routing and parameter solving.

FastAPI matches the path against every included router and then solves the route's
parameters and dependencies afresh on each request, inspecting every annotation again: for a
cached ``GET /recommend`` that was most of the server's CPU per request (docs/benchmarks.md,
"where the time goes"). This pure ASGI middleware answers a well-formed, authorised
``GET /recommend`` itself: it validates the query with the route's own model
(``RecommendQuery``), checks the key with the app's authenticator as the route's dependency
does, and calls the route's endpoint. Everything else (other routes, a query that fails
validation, a missing or refused key, a request with a body, a root path, an app with
dependency overrides) goes on to FastAPI unchanged, so error answers stay FastAPI's own: 422
naming the field, 401 and 403.

It sits inside the metrics, CORS and trace middlewares, so answers carry the same headers and
metrics as FastAPI's.
"""

from __future__ import annotations

from types import UnionType
from typing import Any, Union, get_args, get_origin
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.auth import Access, Authenticator, presented_key
from app.api.routers.recommend import recommend_get, router
from app.api.schemas import RecommendQuery

PATH = "/recommend"
_BODY_HEADERS = (b"content-length", b"transfer-encoding")


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, UnionType):
        return any(_is_list(arg) for arg in get_args(annotation))
    return annotation is list or get_origin(annotation) is list


_FIELDS = frozenset(RecommendQuery.model_fields)
# Repeated keys: FastAPI collects every value of a list parameter, the last of any other.
_LIST_FIELDS = frozenset(
    name for name, field in RecommendQuery.model_fields.items() if _is_list(field.annotation)
)


def parse_query(query_string: bytes) -> RecommendQuery | None:
    """The query as FastAPI would read it, or None when it fails validation (FastAPI then
    answers, with its own 422)."""
    values: dict[str, Any] = {}
    # Starlette's own parsing of the query string (``QueryParams``).
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in _LIST_FIELDS:
            values.setdefault(name, []).append(value)
        elif name in _FIELDS:
            values[name] = value
    try:
        return RecommendQuery.model_validate(values)
    except ValidationError:
        return None


class RecommendFastPath:
    """Answers well-formed ``GET /recommend`` requests that ``access`` lets through."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self._access = access
        # Set as scope["route"], as FastAPI does: the metrics label it by its path.
        self._route = next(
            route
            for route in router.routes
            if isinstance(route, APIRoute) and route.endpoint is recommend_get
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "GET"
            or scope.get("root_path")
            or any(name in _BODY_HEADERS for name, _ in scope["headers"])
            or scope["app"].dependency_overrides  # overrides are FastAPI's to apply
        ):
            await self.app(scope, receive, send)
            return
        query = parse_query(scope["query_string"])
        if query is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        authenticator: Authenticator = request.app.state.authenticator
        if authenticator.enforced and not authenticator.allows(
            self._access, await presented_key(request)
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = self._route
        response = await recommend_get(request, request.app.state.services, query)
        await response(scope, receive, send)
