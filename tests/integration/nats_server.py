"""A ``nats-server`` with JetStream owned by one test, which it may kill and restart."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.private_server import PrivateServer, owned_server


class PrivateNats(PrivateServer):
    """JetStream on a private port and store directory: what it acked is in the store files,
    so it survives a SIGKILL and a restart on the same directory."""

    executable = "nats-server"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until it greets a client with INFO."""
        argv = ["-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.directory]
        self._launch(argv, self._greets, "answer")

    def _greets(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                return sock.recv(4).startswith(b"INFO")
        except OSError:
            return False


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    with owned_server(PrivateNats, tmp_path / "nats") as server:
        yield server
