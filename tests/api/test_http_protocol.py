"""Responses through the write-coalescing httptools protocol: the held-write transport on its
own, then a real uvicorn serving with it (plain, streamed and closing responses)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.api.http_protocol import CoalescingHttpToolsProtocol, HeldWriteTransport
from loadtests.server import free_port


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 7


async def _held() -> tuple[HeldWriteTransport, RecordingTransport]:
    inner = RecordingTransport()
    return HeldWriteTransport(inner, asyncio.get_running_loop()), inner


async def test_a_head_and_its_body_leave_in_one_write() -> None:
    held, inner = await _held()
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    held.write(b"{}")
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert len(inner.writes) == 1


async def test_a_lone_write_leaves_within_one_loop_iteration() -> None:
    held, inner = await _held()
    held.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert inner.writes == []
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


async def test_at_most_one_write_is_held_and_order_is_kept() -> None:
    held, inner = await _held()
    for chunk in (b"a", bytearray(b"b"), memoryview(b"c"), b"d", b"e"):
        held.write(chunk)
    assert inner.writes == [b"ab", b"cd"]  # "e" waits for the loop
    await asyncio.sleep(0)
    assert b"".join(inner.writes) == b"abcde"
    held.writelines([b"f", b"g"])
    await asyncio.sleep(0)
    assert inner.writes[-1] == b"fg"


async def test_close_sends_what_is_held_first() -> None:
    held, inner = await _held()
    held.write(b"last bytes")
    held.close()
    assert inner.writes == [b"last bytes"]
    assert inner.closed
    await asyncio.sleep(0)
    assert inner.writes == [b"last bytes"]


async def test_an_end_of_file_goes_after_what_is_held() -> None:
    held, inner = await _held()
    eof_after: list[list[bytes]] = []
    inner.write_eof = lambda: eof_after.append(list(inner.writes))  # type: ignore[method-assign]
    held.write(b"body")
    held.write_eof()
    assert eof_after == [[b"body"]]


async def test_a_transport_closed_under_it_drops_the_held_write() -> None:
    held, inner = await _held()
    held.write(b"to a peer that left")
    inner.close()  # connection lost or aborted, not through the wrapper
    await asyncio.sleep(0)  # no write after close (RecordingTransport would fail)
    assert inner.writes == []


async def test_everything_else_is_the_wrapped_transports() -> None:
    held, _ = await _held()
    assert held.get_write_buffer_size() == 7
    assert held.is_closing() is False


async def _small(request: Request) -> Response:
    return JSONResponse({"items": list(range(10))})


async def _chunks() -> AsyncIterator[bytes]:
    for n in range(50):
        yield f"chunk {n}\n".encode()
        if n % 10 == 0:
            await asyncio.sleep(0)


async def _stream(request: Request) -> Response:
    return StreamingResponse(_chunks(), media_type="text/plain")


async def _closing(request: Request) -> Response:
    return Response(b"bye", headers={"connection": "close"})


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    app = Starlette(
        routes=[Route("/small", _small), Route("/stream", _stream), Route("/close", _closing)]
    )
    port = free_port()
    config = uvicorn.Config(
        app, port=port, loop="uvloop", http=CoalescingHttpToolsProtocol, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_keep_alive_answers_arrive_whole(server_url: str) -> None:
    with httpx.Client(base_url=server_url, timeout=5) as client:
        for _ in range(20):  # one connection, answer after answer
            answer = client.get("/small")
            assert answer.status_code == 200
            assert answer.json() == {"items": list(range(10))}


def test_pipelined_requests_get_every_answer_in_order(server_url: str) -> None:
    port = int(server_url.rsplit(":", 1)[1])
    request = b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request * 3 + b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):  # the server closes after the last answer
            received += chunk
    assert received.count(b"HTTP/1.1 200 OK") == 4
    assert received.count(b'{"items":[0,1,2,3,4,5,6,7,8,9]}') == 3
    assert received.endswith(b"\r\n\r\nbye")


def test_a_streamed_answer_arrives_whole(server_url: str) -> None:
    answer = httpx.get(f"{server_url}/stream", timeout=5)
    assert answer.status_code == 200
    assert answer.text == "".join(f"chunk {n}\n" for n in range(50))
