"""A pure ASGI middleware (cheaper than BaseHTTPMiddleware) timing every request."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import metrics


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            endpoint = _endpoint(scope)
            source = scope.get("state", {}).get("source", "none")
            metrics.REQUEST_SECONDS.labels(endpoint, source).observe(time.perf_counter() - started)
            metrics.REQUESTS.labels(endpoint, str(status)).inc()


def _endpoint(scope: MutableMapping[str, Any]) -> str:
    # The route template, never the raw path: raw paths would put ids into label values.
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
