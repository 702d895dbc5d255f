"""Pure ASGI middlewares (cheaper than BaseHTTPMiddleware): request timing, and the trace
context that names every request in its response headers and log lines."""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response
from app.observability import metrics
from app.observability.tracing import CURRENT, start_span

log = logging.getLogger(__name__)

# What TraceContextMiddleware reads and answers; browsers may send and read them (CORS).
TRACE_HEADERS = ("traceparent", "X-Trace-ID", "X-Request-ID")


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
            elapsed = time.perf_counter() - started
            metrics.labelled(metrics.REQUEST_SECONDS, endpoint, source).observe(elapsed)
            metrics.labelled(metrics.REQUESTS, endpoint, str(status)).inc()


def _endpoint(scope: MutableMapping[str, Any]) -> str:
    # The route template, never the raw path: raw paths would put ids into label values.
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class TraceContextMiddleware:
    """Gives each request a W3C trace context (the caller's ``traceparent`` continued, or a
    new trace) and a request id, sets them for the logs, and returns them on every response:
    ``traceparent``, ``X-Trace-ID`` and ``X-Request-ID`` (the caller's when valid). An
    exception no handler caught is logged with those ids and answered 500 with them.

    Added last, so it wraps everything but Starlette's ServerErrorMiddleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traceparent = request_id = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")
        context = start_span(traceparent, request_id)
        token = CURRENT.set(context)
        ids = [
            (b"traceparent", context.traceparent.encode()),
            (b"x-trace-id", context.trace_id.encode()),
        ]
        ids.append((b"x-request-id", context.request_id.encode()))
        started = False

        async def send_with_ids(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                headers += ids
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        except Exception:
            # The route template, not the path: paths may hold user ids.
            log.exception("unhandled error on %s %s", scope["method"], _endpoint(scope))
            if started:
                raise
            response = error_response(500, "internal error")
            await response(scope, receive, send_with_ids)
        finally:
            CURRENT.reset(token)
