"""JSON responses encoded once with orjson, bypassing a second validation of our own output."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response


def json_response(
    body: Any, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=orjson.dumps(body),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )
