"""A TCP proxy that can delay every reply, to make a healthy server look slow."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class DelayProxy:
    """Forwards 127.0.0.1:``port`` to ``target_port``; each chunk the target sends back is held
    for ``delay_seconds`` (settable while running) before it reaches the client."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay_seconds = 0.0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        self._loop.run_until_complete(asyncio.start_server(self._handle, sock=listener))
        self._started.set()
        self._loop.run_forever()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            self._pipe(client_r, server_w, delayed=False),
            self._pipe(server_r, client_w, delayed=True),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        with suppress(OSError):
            while chunk := await reader.read(65536):
                if delayed and self.delay_seconds:
                    await asyncio.sleep(self.delay_seconds)
                writer.write(chunk)
                await writer.drain()
        writer.close()

    def start(self) -> None:
        self._thread.start()
        self._started.wait(5)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@contextmanager
def delay_proxy(target_port: int) -> Iterator[DelayProxy]:
    proxy = DelayProxy(target_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
