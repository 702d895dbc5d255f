"""A ``nats-server`` with JetStream owned by one test, which it may kill and restart."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests.server import free_port


class PrivateNats:
    """JetStream on a private port and store directory: what it acked is in the store files,
    so it survives a SIGKILL and a restart on the same directory."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until it greets a client with INFO."""
        self._process = subprocess.Popen(
            ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._greets():
            if self._process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats-server on port {self.port} did not answer")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, and reap it."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
        self._process = None

    def _greets(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                return sock.recv(4).startswith(b"INFO")
        except OSError:
            return False


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    if shutil.which("nats-server") is None:
        pytest.skip("nats-server is not installed")
    server = PrivateNats(tmp_path / "nats")
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.kill()
