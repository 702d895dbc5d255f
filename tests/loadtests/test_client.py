"""The load generator's open loop sends each request on a free connection."""

from __future__ import annotations

import asyncio

import pytest

from loadtests.client import LoadSpec, _run, get_request

SLOW_S = 0.3


def test_open_loop_requests_go_to_free_connections_not_behind_a_busy_one() -> None:
    """One of two connections answers slowly: requests due meanwhile take the other."""
    served: list[int] = []

    async def scenario() -> list[float]:
        accepted = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            connection, accepted = accepted, accepted + 1
            while await reader.readuntil(b"\r\n\r\n"):
                served.append(connection)
                if connection == 0:
                    await asyncio.sleep(SLOW_S)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        spec = LoadSpec(port, [get_request("/")], connections=2, duration_s=1.0, rate_per_s=40)
        async with server:
            result = await _run(spec)
        return result.latencies_ms

    latencies = asyncio.run(scenario())

    assert len(latencies) == 40
    # The slow connection takes a request each time it is free again (about every SLOW_S),
    # the fast one all the others.
    assert served.count(0) <= 6
    assert sorted(latencies)[len(latencies) // 2] < SLOW_S * 1000 / 3


def test_open_loop_stops_with_the_error_when_the_server_is_gone() -> None:
    """Connections that fail and cannot reconnect end the run with their error, not a hang
    waiting for a free connection that never comes back."""

    async def scenario() -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            server.close()  # nobody listens any more: reconnecting is refused
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        spec = LoadSpec(port, [get_request("/")], connections=2, duration_s=1.0, rate_per_s=40)
        await asyncio.wait_for(_run(spec), timeout=10)

    with pytest.raises(ConnectionRefusedError):
        asyncio.run(scenario())
