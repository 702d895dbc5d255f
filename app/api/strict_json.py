"""JSON bodies read so that no value the API cannot represent reaches validation unmarked.

Python's ``json`` module, which FastAPI reads bodies with, accepts ``NaN`` and ``Infinity``
(not JSON), strings holding lone surrogates such as ``"\\ud800"`` (not Unicode: they cannot be
encoded, so a stored event or an answer echoing them failed), and numbers beyond a double.
Each became a 500, and in an event batch the whole batch failed.

Routes of ``StrictJsonRoute`` read bodies with orjson, which refuses all of these. When it
refuses a body, the standard library reads it again to tell them apart:

* ``NaN``, ``Infinity``, ``-Infinity``: the body is not JSON, **422** (``json_invalid``);
* a lone surrogate in a string, a number beyond a double, an integer of thousands of digits:
  that value is replaced by ``UNREPRESENTABLE``, which no field accepts, so validation names
  the field (**422**), and in an event batch only that event is rejected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

# Python refuses to convert integers longer than this (``sys.get_int_max_str_digits``); no
# field of the API takes one anywhere near it.
MAX_INTEGER_DIGITS = 4000


class Unrepresentable:
    """A JSON value the API cannot represent; fails every typed field's validation."""

    def __repr__(self) -> str:
        return "a value that is not representable (lone surrogate or number out of range)"


UNREPRESENTABLE = Unrepresentable()


def loads(body: bytes) -> Any:
    """``body`` parsed, with unrepresentable values replaced; ``json.JSONDecodeError`` when it
    is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        parsed = json.loads(
            body,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise  # not UTF-8 (FastAPI answers 400) or not JSON (422)
    except ValueError as exc:  # ``_refuse_constant``
        raise json.JSONDecodeError(str(exc), body.decode("utf-8", "replace"), 0) from None
    return _mark_lone_surrogates(parsed)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float | Unrepresentable:
    value = float(text)
    return value if math.isfinite(value) else UNREPRESENTABLE


def _bounded_int(text: str) -> int | Unrepresentable:
    return int(text) if len(text) <= MAX_INTEGER_DIGITS else UNREPRESENTABLE


def _mark_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value if _is_unicode(value) else UNREPRESENTABLE
    if isinstance(value, list):
        return [_mark_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {
            (k if _is_unicode(k) else repr(UNREPRESENTABLE)): _mark_lone_surrogates(v)
            for k, v in value.items()
        }
    return value


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """An ``APIRoute`` whose endpoint reads its JSON body with ``loads``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler
