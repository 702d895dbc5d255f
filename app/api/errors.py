"""Error answers the framework's defaults get wrong for this API.

* An over-long list in a body (a batch over its limit) is 413, not 422, with the same
  ``detail`` list, so a client still learns which field is too long and what the limit is.
  Every other validation error keeps FastAPI's 422.
* A 405 lists in ``Allow`` every method the path supports: Starlette names only those of the
  first route that matched the path (``GET /recommend`` hides ``POST /recommend``).

The OpenAPI description lists these answers (and the body-size 413, the 400 for a request that
cannot be read, and the 401/403 of keyed routes) on every operation that can give them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Route

from app.api.responses import json_response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.openapi = _describe_error_answers(app.openapi)  # type: ignore[method-assign]


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if any(_is_oversized_batch(error) for error in errors):
        return json_response({"detail": jsonable_encoder(errors)}, status_code=413)
    return await request_validation_exception_handler(request, exc)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 405:
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return await http_exception_handler(request, exc)


# Any request: the HTTP server refuses malformed HTTP (say, an over-long URL) before the API.
_READ_ERRORS = {
    "400": {
        "description": "The request could not be read: malformed HTTP, or a body that is not UTF-8."
    },
    "431": {
        "description": "The request head is over a limit: its size, the URL's length or the "
        "number of header fields (refused before routing, the connection closed)."
    },
}
_BODY_ERRORS = {
    "413": {
        "description": "The body is over the size limit, or a list in it (a batch) is over "
        "its length limit (then `detail` names the field, as a 422 would)."
    },
}
_KEY_ERRORS = {
    "401": {"description": "No API key, or an unknown one (`WWW-Authenticate` is set)."},
    "403": {"description": "The API key lacks the scope this route needs."},
}


def _describe_error_answers(generate: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Wrap ``app.openapi`` so every operation lists 400, those with a body 413, and keyed ones
    (an API-key security requirement) 401 and 403."""

    def openapi() -> dict[str, Any]:
        schema = generate()  # FastAPI builds it once and caches it; the additions are idempotent
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                _add_missing(responses, _READ_ERRORS)
                if "requestBody" in operation:
                    _add_missing(responses, _BODY_ERRORS)
                if operation.get("security"):
                    _add_missing(responses, _KEY_ERRORS)
        return schema

    return openapi


def _add_missing(responses: dict[str, Any], answers: dict[str, Any]) -> None:
    for status, answer in answers.items():
        responses.setdefault(status, answer)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in _leaf_routes(request.app.router.routes):
        if route.matches(request.scope)[0] is Match.PARTIAL:
            methods.update(route.methods or ())
    return sorted(methods)


def _leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[Route]:
    """Every endpoint route, looking inside included routers (FastAPI keeps those as one
    route holding the ``original_router``; routers here carry their prefix themselves)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _leaf_routes(included.routes)
        elif isinstance(route, Route):
            yield route


def _is_oversized_batch(error: object) -> bool:
    return (
        isinstance(error, dict)
        and error.get("type") == "too_long"
        and tuple(error.get("loc", ()))[:1] == ("body",)
    )
