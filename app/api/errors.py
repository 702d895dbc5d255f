"""One JSON shape for every error the API answers, and the answers the framework's defaults
get wrong.

Every error body is ``{"status", "error", "message", "detail", "request_id"}``: ``error`` a
short code, ``message`` one sentence for a person, ``detail`` a list of ``{"loc", "msg",
"type"}`` naming each field at fault (one entry with an empty ``loc`` when no field is), and
``request_id`` the id the response's ``X-Request-ID`` carries. No error repeats what the
client sent: validation errors lose pydantic's ``input``, so a refused batch of a thousand
events answers a few hundred bytes.

* An over-long list in a body (a batch over its limit) is 413, not 422, with the same
  ``detail``, so a client still learns which field is too long and what the limit is.
* A body sent without a JSON content type is 415 saying ``application/json`` is required,
  not pydantic's "Input should be a valid dictionary".
* A 405 lists in ``Allow`` every method the path supports: Starlette names only those of the
  first route that matched the path (``GET /recommend`` hides ``POST /recommend``).

The OpenAPI description lists these answers (and the body-size 413, the 400 for a request that
cannot be read, and the 401/403 of keyed routes) on every operation that can give them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Route

from app.api.responses import json_response
from app.observability.tracing import CURRENT

_MESSAGE_FIELDS = 3  # field errors spelled out in ``message``; ``detail`` has them all
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "unavailable",
}
# Limits worth telling the client (``max_length`` of a batch...); never the input itself.
_CONTEXT_KEYS = frozenset(
    {"ge", "gt", "le", "lt", "min_length", "max_length", "expected", "pattern", "limit"}
)


def error_body(status: int, message: str, detail: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The one error shape; ``detail`` defaults to a single entry naming no field."""
    code = _CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    context = CURRENT.get()
    return {
        "status": status,
        "error": code,
        "message": message,
        "detail": list(detail) or [{"loc": [], "msg": message, "type": code}],
        "request_id": None if context is None else context.request_id,
    }


def error_response(
    status: int,
    message: str,
    detail: Sequence[dict[str, Any]] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    return json_response(error_body(status, message, detail), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.openapi = _describe_error_answers(app.openapi)  # type: ignore[method-assign]


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    errors = [_field_error(error) for error in exc.errors()]
    if _sent_without_json(request, errors):
        return error_response(
            415,
            "the body must be JSON, sent with Content-Type: application/json",
            [
                {
                    "loc": ["header", "content-type"],
                    "msg": "expected application/json",
                    "type": "content_type",
                }
            ],
        )
    status = 413 if any(_is_oversized_batch(error) for error in errors) else 422
    return error_response(status, _summary(errors), errors)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    if isinstance(exc.detail, list):  # field errors a route found itself, as pydantic's
        errors = [_field_error(error) for error in exc.detail]
        return error_response(exc.status_code, _summary(errors), errors, headers or None)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return error_response(exc.status_code, message, headers=headers or None)


def _field_error(error: Any) -> dict[str, Any]:
    """pydantic's error without ``input`` (the client's own data) or ``url``."""
    entry: dict[str, Any] = {
        "loc": [part if isinstance(part, int) else str(part) for part in error.get("loc", ())],
        "msg": str(error.get("msg", "")),
        "type": str(error.get("type", "")),
    }
    context = {
        key: value
        for key, value in (error.get("ctx") or {}).items()
        if key in _CONTEXT_KEYS and isinstance(value, int | float | str)
    }
    if context:
        entry["ctx"] = context
    return entry


def _summary(errors: Sequence[dict[str, Any]]) -> str:
    parts = [
        f"{'.'.join(map(str, error['loc'])) or 'request'}: {error['msg']}"
        for error in errors[:_MESSAGE_FIELDS]
    ]
    more = len(errors) - _MESSAGE_FIELDS
    return "invalid request: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _sent_without_json(request: Request, errors: Sequence[dict[str, Any]]) -> bool:
    """A body error at the body itself, on a request whose content type is not JSON."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = content_type == "application/json" or content_type.endswith("+json")
    return not is_json and any(error["loc"] == ["body"] for error in errors)


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
_MEDIA_ERRORS = {
    "415": {"description": "The body was sent without `Content-Type: application/json`."},
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
                    _add_missing(responses, _MEDIA_ERRORS)
                if operation.get("security"):
                    _add_missing(responses, _KEY_ERRORS)
                _use_error_schema(responses)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(_ERROR_SCHEMAS)
        return schema

    return openapi


class FieldErrorOut(BaseModel):
    loc: list[str | int] = Field(description="Where: `query`/`body`/`path`/`header`, field names.")
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="Machine-readable kind, e.g. `missing`, `too_long`.")
    ctx: dict[str, int | float | str] | None = Field(
        None, description='The limit broken, e.g. `{"max_length": 1000}`.'
    )


class ErrorResponse(BaseModel):
    """Every error the API answers, whatever its status."""

    status: int = Field(description="The HTTP status.")
    error: str = Field(description="Short code, e.g. `invalid_request`, `not_found`.")
    message: str = Field(description="One sentence for a person; never repeats the input.")
    detail: list[FieldErrorOut] = Field(
        description="Each field at fault; one entry with an empty `loc` when no field is."
    )
    request_id: str | None = Field(description="The answer's X-Request-ID.")


_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_ERROR_SCHEMAS = {
    name: model
    for name, model in models_json_schema(
        [(ErrorResponse, "serialization")], ref_template="#/components/schemas/{model}"
    )[1]["$defs"].items()
}


def _use_error_schema(responses: dict[str, Any]) -> None:
    """Every 4xx/5xx answer documented with ``ErrorResponse``, unless the route gave its own
    body model (FastAPI's default ``HTTPValidationError`` is not what the API sends)."""
    for status, answer in responses.items():
        if not status.isdigit() or int(status) < 400:
            continue
        schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
        if not schema or schema.get("$ref", "").endswith("/HTTPValidationError"):
            answer["content"] = {"application/json": {"schema": _ERROR_REF}}


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


def _is_oversized_batch(error: dict[str, Any]) -> bool:
    return error["type"] == "too_long" and error["loc"][:1] == ["body"]
