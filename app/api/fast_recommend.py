"""``GET /recommend`` answered in front of FastAPI's middleware stack, routing and parameter
solving.

FastAPI matches the path against every route, then solves the route's query model and
dependencies afresh on each request, inspecting their annotations again, inside six layers of
its own middleware. For ``GET /recommend``, the route every page view calls, that costs about
a fifth of the server's CPU per answer (docs/benchmarks.md, HTTP stack). ``RecserveAPI``
answers a well-formed, authorised ``GET /recommend`` before all that: it validates the query
with the route's own model (``RecommendQuery``), checks the key with the app's authenticator
as the route's dependency does, and calls the route's endpoint inside the app's own
middlewares (trace context, CORS, metrics, body limit: ``user_middleware``, in their order),
so answers carry the same headers and metrics.

Everything else goes through FastAPI unchanged, so error answers stay FastAPI's own (422
naming the field, 401, 403): other routes, a query that fails validation or names an unknown
parameter, a missing or refused key, a request with a body, a root path, an app with
dependency overrides, and explained answers (slower anyway, and subject to a cap on k).
``tests/api/test_fast_recommend.py`` compares both paths answer by answer, so a FastAPI or
Starlette release that changes either shows there.
"""

from __future__ import annotations

from types import UnionType
from typing import Any, Union, get_args, get_origin
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.auth import Access, Authenticator, presented_key
from app.api.deps import services_of
from app.api.routers.recommend import recommend_get, router
from app.api.schemas.recommend import RecommendQuery

PATH = "/recommend"
_BODY_HEADERS = (b"content-length", b"transfer-encoding")
_QUERY_KEY = "recserve.recommend_query"  # the validated query, handed to the endpoint


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
    """The query as FastAPI reads it, or None when it fails validation or names an unknown
    parameter (FastAPI then answers, with its own 422 naming it)."""
    values: dict[str, Any] = {}
    # Starlette parses a query string with the same call (``QueryParams``).
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in _LIST_FIELDS:
            values.setdefault(name, []).append(value)
        elif name in _FIELDS:
            values[name] = value
        else:
            return None
    try:
        return RecommendQuery.model_validate(values)
    except ValidationError:
        return None


class RecserveAPI(FastAPI):
    """FastAPI, with well-formed ``GET /recommend`` requests that ``recommend_access`` lets
    through answered in front of its middleware stack."""

    def __init__(self, *, recommend_access: Access, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._recommend_access = recommend_access
        # Set as scope["route"], as FastAPI does: the metrics label requests by its path.
        self._recommend_route = next(
            route
            for route in router.routes
            if isinstance(route, APIRoute) and route.endpoint is recommend_get
        )
        self._fast_stack: ASGIApp | None = None  # built on first use, as Starlette's is

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = self._fast_query(scope)
        if query is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        request = Request(scope, receive)
        authenticator: Authenticator = self.state.authenticator
        access = self._recommend_access
        if authenticator.requires_key(access) and not authenticator.allows(
            access, await presented_key(request)
        ):
            await super().__call__(scope, receive, send)
            return
        scope["route"] = self._recommend_route
        scope[_QUERY_KEY] = query
        if self._fast_stack is None:
            stack: ASGIApp = _answer
            for cls, args, kwargs in reversed(self.user_middleware):
                stack = cls(stack, *args, **kwargs)
            self._fast_stack = stack
        await self._fast_stack(scope, receive, send)

    def _fast_query(self, scope: Scope) -> RecommendQuery | None:
        """The query of a request the fast path may answer, or None."""
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "GET"
            or scope.get("root_path")
            or self.root_path
            or any(name in _BODY_HEADERS for name, _ in scope["headers"])
            or self.dependency_overrides  # overrides are FastAPI's to apply
        ):
            return None
        query = parse_query(scope["query_string"])
        return None if query is None or query.explain else query


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    services = services_of(request)
    response = await recommend_get(
        request, services.settings, services.engine, services.served, scope[_QUERY_KEY]
    )
    await response(scope, receive, send)
