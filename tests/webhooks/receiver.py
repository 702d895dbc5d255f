"""A real HTTP receiver for webhook tests: a threaded ``http.server`` on a local port whose
answer a test scripts (status per request, or a hang), recording every request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from loadtests.server import free_port


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered


class Receiver:
    """Answers each POST with ``status_for(request_number)`` after ``delay_seconds``. Not
    listening until ``start``, so a test gets "connection refused" on ``url`` before that."""

    def __init__(self) -> None:
        self.port = free_port()
        self.status_for: Callable[[int], int] = lambda _number: 200
        self.delay_seconds = 0.0
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/crm"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(receiver.delay_seconds)
                with receiver._lock:
                    status = receiver.status_for(len(receiver.received) + 1)
                    receiver.received.append(Received(dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # a hanging handler must not hold up the test's end
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self) -> list[Received]:
        """The requests answered 2xx, in arrival order."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def attempts(self) -> list[Received]:
        with self._lock:
            return list(self.received)
