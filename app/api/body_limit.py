"""The request body limit, answered in the API's JSON error shape.

Starlette's limit (FastAPI's ``max_body_size``) answers a plain-text "Content Too Large" when
the declared length is over the limit, and sits outside the app's own middlewares, so that
answer carried no request id either. This one runs inside them: a declared length over the
limit is refused before the body is read; a body that streams past it stops the request with
a 413 the error handlers turn into JSON.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response


def _too_large(limit: int) -> str:
    return f"the request body is over the {limit}-byte limit"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await error_response(413, _too_large(self.limit))(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, _too_large(self.limit))
            return message

        await self.app(scope, receive_within_limit, send)
