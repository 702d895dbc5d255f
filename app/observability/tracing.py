"""W3C Trace Context for each request: accept the caller's ``traceparent``, otherwise start a
trace with an OpenTelemetry-compatible id (16 random bytes, hex), and name this request's span.

The current request's ids live in a context variable, so every log line written while the
request is handled carries them (``app.observability.logging``) without passing them around.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

from app.infra.random_ids import random_hex

# version-traceid-parentid-flags; later versions may append fields after a dash.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a microsecond per request
class TraceContext:
    trace_id: str  # 32 hex digits, shared by every service on the request's path
    span_id: str  # 16 hex digits, this server's handling of the request
    flags: str  # 2 hex digits; 01 = the caller sampled (recorded) the trace
    request_id: str  # the caller's X-Request-ID when well-formed, else 32 random hex digits

    @property
    def traceparent(self) -> str:
        """The header value naming this request's span as the parent for the next hop."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


CURRENT: ContextVar[TraceContext | None] = ContextVar("recserve_trace", default=None)


def start_span(traceparent: str | None, request_id: str | None) -> TraceContext:
    """This request's trace context: a child of a valid ``traceparent``, else a new trace.

    The request id is the caller's ``X-Request-ID`` when it is 1-128 characters of
    ``A-Z a-z 0-9 . _ : -`` (so it can go in logs and headers as it is), else a new one of 32
    hex digits, like every other id the API makes."""
    random = random_hex(40)
    span_id = random[32:48]
    parent = _parse(traceparent) if traceparent else None
    trace_id, flags = parent if parent is not None else (random[:32], "00")
    if request_id is None or not _REQUEST_ID.fullmatch(request_id):
        request_id = random[48:]
    return TraceContext(trace_id, span_id, flags, request_id)


def _parse(traceparent: str) -> tuple[str, str] | None:
    """(trace id, flags) of a valid header; None for anything the spec says to ignore."""
    match = _TRACEPARENT.fullmatch(traceparent.strip())
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, flags
