"""A server process owned by one test (a private Redis, a private NATS): its own port and data
directory, so the test may kill and restart it without touching the shared servers."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from loadtests.server import free_port


class PrivateServer(ABC):
    """The process of one ``executable`` on a free port, keeping its data in ``directory``."""

    executable: str

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @abstractmethod
    def start(self) -> None:
        """Start the server and return once it answers a client."""

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, and reap it."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
        self._process = None

    def _launch(
        self,
        argv: Sequence[str | Path],
        answers: Callable[[], bool],
        what: str,
        user: str | None = None,
    ) -> None:
        """Start ``executable argv`` (as ``user`` when given) and wait up to 10 s until
        ``answers()``; ``what`` names the answer in the error."""
        process = subprocess.Popen(
            [self.executable, *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=user,
        )
        self._process = process
        deadline = time.monotonic() + 10
        while not answers():
            if process.poll() is not None:
                raise RuntimeError(f"{self.executable} exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.executable} on port {self.port} did not {what}")
            time.sleep(0.05)


Server = TypeVar("Server", bound=PrivateServer)


@contextmanager
def owned_server(kind: type[Server], directory: Path) -> Iterator[Server]:
    """A started ``kind`` keeping its data in ``directory``, killed on exit; skips the test
    when its executable is not installed."""
    if shutil.which(kind.executable) is None:
        pytest.skip(f"{kind.executable} is not installed")
    server = kind(directory)
    directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.kill()
