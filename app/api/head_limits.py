"""Bounds on a request's head (request line and headers), enforced while it is parsed.

httptools sets no limit on the head: a 64 MiB header was read whole, at a cost growing with
the square of its size, before any route or key check. ``GuardedHttpToolsProtocol`` counts
the bytes of the head as they arrive and refuses with **431** (connection closed) as soon as

* the head so far is over ``max_header_bytes`` (counted per received chunk while the head is
  incomplete, so at most one read past the limit is ever parsed; exactly, from the parsed
  URL and headers, when the head completes within one read),
* the URL is over ``max_url_bytes``, or
* there are more than ``max_headers`` header fields.

Nothing of the request reaches the app, and the answer echoes none of it. What the client
still sends is read and dropped, unparsed, for ``LINGER_SECONDS``, so it receives the 431.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cache
from typing import ClassVar, cast

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.api.errors import error_body
from app.settings import ApiSettings, Settings

LINGER_SECONDS = 2.0
_STATUS_LINE = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"


@dataclass(frozen=True, slots=True)
class HeadLimits:
    max_header_bytes: int
    max_url_bytes: int
    max_headers: int

    @classmethod
    def of(cls, api: ApiSettings) -> HeadLimits:
        return cls(api.max_header_bytes, api.max_url_bytes, api.max_headers)


@cache
def _configured() -> HeadLimits:
    # Read once per worker, from the environment every worker is started with.
    return HeadLimits.of(Settings().api)


class HeadTooLargeError(Exception):
    """Raised inside a parser callback to stop parsing a head over its limits."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing heads over ``HeadLimits`` with 431."""

    limits: ClassVar[HeadLimits | None] = None  # None: from the settings

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._limits = self.limits or _configured()
        self._reading_head = True
        self._head_bytes = 0  # received since the head began (whole reads)
        self._parsed_head_bytes = 0  # of the URL and headers parsed so far
        self._header_count = 0
        self._refusal: str | None = None
        # uvloop's transports are not ``asyncio.Transport`` subclasses, but behave as one.
        super().connection_made(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)  # a callback's HeadTooLargeError ends in send_400_response
        if (
            self._refusal is None
            and self._reading_head
            and self._head_bytes > self._limits.max_header_bytes
        ):
            self._refuse(f"request headers over {self._limits.max_header_bytes} bytes")

    def on_url(self, url: bytes) -> None:
        self._parsed_head_bytes += len(url)
        if len(self.url) + len(url) > self._limits.max_url_bytes:
            self._refusal = f"request URL over {self._limits.max_url_bytes} bytes"
            raise HeadTooLargeError
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._parsed_head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._header_count > self._limits.max_headers:
            self._refusal = f"more than {self._limits.max_headers} header fields"
            raise HeadTooLargeError
        if self._parsed_head_bytes > self._limits.max_header_bytes:
            self._refusal = f"request headers over {self._limits.max_header_bytes} bytes"
            raise HeadTooLargeError
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_head = True
        self._head_bytes = self._parsed_head_bytes = self._header_count = 0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._refusal is not None:
            self._refuse(self._refusal)
        else:
            super().send_400_response(msg)

    def _refuse(self, reason: str) -> None:
        self._refusal = reason
        # The API's one error shape; no request id yet: the request never reached the app.
        body = orjson.dumps(error_body(431, reason))
        self.transport.write(
            b"".join(
                (
                    _STATUS_LINE,
                    *(b"%s: %s\r\n" % header for header in self.server_state.default_headers),
                    b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                )
            )
        )
        # Closing with the rest of the head unread would reset the connection, and the client,
        # still sending, would see the reset instead of the answer. So: end our side, discard
        # what still arrives (``data_received`` returns at once), close after a grace period.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()
