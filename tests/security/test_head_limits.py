"""Oversized request heads are refused with 431 while they arrive, through a real uvicorn
running the guarded protocol (limits from the settings, as ``recserve serve`` runs it)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.head_limits import GuardedHttpToolsProtocol, HeadLimits
from app.settings import ApiSettings
from loadtests.server import free_port

LIMITS = HeadLimits.of(ApiSettings())
MIB = 1 << 20


async def _echo_count(request: Request) -> Response:
    return JSONResponse({"headers": len(request.headers), "body": len(await request.body())})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    app = Starlette(routes=[Route("/", _echo_count, methods=["GET", "POST"])])
    chosen = free_port()
    config = uvicorn.Config(
        app, port=chosen, loop="uvloop", http=GuardedHttpToolsProtocol, log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield chosen
    server.should_exit = True
    thread.join(10)


def exchange(port: int, request: bytes) -> tuple[bytes, float]:
    """Send ``request`` (as far as the server reads it) and read the answer until the server
    closes; returns the answer and the seconds from the first byte sent to its arrival."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.perf_counter()
        sent = threading.Thread(target=_send_all, args=(sock, request), daemon=True)
        sent.start()
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        elapsed = time.perf_counter() - started
        sock.settimeout(5)
        while chunk := sock.recv(65536):
            answer += chunk
        sent.join(5)
        return answer, elapsed


def _send_all(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server closed; its answer is on its way
        sock.sendall(data)


def head(*headers: bytes, target: bytes = b"/") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n" + b"".join(h + b"\r\n" for h in headers)


def test_a_one_mib_header_is_431_within_milliseconds_and_never_echoed(port: int) -> None:
    secret = b"x-marker-" + b"a" * MIB
    answer, elapsed = exchange(port, head(b"X-Big: " + secret) + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert elapsed < 0.1, elapsed
    assert b"x-marker" not in answer
    body = orjson.loads(answer.partition(b"\r\n\r\n")[2])
    assert body["status"] == 431
    assert body["message"] == "request headers over 32768 bytes"
    assert b"connection: close" in answer


def test_a_head_over_the_limit_in_one_read_too(port: int) -> None:
    request = head(*(b"X-H%d: %s" % (n, b"v" * 1000) for n in range(40))) + b"\r\n"
    assert LIMITS.max_header_bytes < len(request) < 64 * 1024  # one read
    answer, _ = exchange(port, request)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_too_many_header_fields_or_too_long_a_url_are_431(port: int) -> None:
    many = head(*(b"X-%d: 1" % n for n in range(LIMITS.max_headers + 1))) + b"\r\n"
    answer, _ = exchange(port, many)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"more than 100 header fields" in answer

    url = b"/?q=" + b"u" * LIMITS.max_url_bytes
    answer, _ = exchange(port, head(target=url) + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"uuuu" not in answer


def test_heads_within_the_limits_and_large_bodies_pass_on_a_kept_alive_connection(
    port: int,
) -> None:
    near = b"X-Near: " + b"n" * (LIMITS.max_header_bytes - 200)
    body = b"b" * (4 * LIMITS.max_header_bytes)
    post = b"POST / HTTP/1.1\r\nHost: t\r\n" + near + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
    # Three requests on one connection: the count starts afresh for each head.
    pipelined = (post + body) * 2 + head(*(b"X-%d: 1" % n for n in range(90))) + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(pipelined)
        answers = b""
        while answers.count(b"HTTP/1.1 200 ") < 3 or not answers.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, answers
            answers += chunk
    assert answers.count(b"HTTP/1.1 200 ") == 3
    assert b"431" not in answers
    assert answers.count(b'"body":%d' % len(body)) == 2
