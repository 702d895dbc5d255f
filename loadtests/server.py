"""Start a server in a subprocess for a benchmark and wait until it answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(
    argv: Sequence[str],
    port: int,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    stderr_path: Path | None = None,
    unset: Iterable[str] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; ``/healthz`` or ``/docs`` must answer first. The
    server gets this process's environment with ``env`` on top and ``unset`` removed.

    The server's stderr (its logs) goes to ``stderr_path`` or a temporary file, not a pipe:
    nobody reads a pipe while the server runs, and a full one would block the server.
    """
    # Feast's import sets PROMETHEUS_MULTIPROC_DIR in this process for its own use: a server
    # inheriting it would keep its metrics in that directory, summed with every other server
    # started from here. A server gets one only when ``env`` names it.
    dropped = set(unset) | ({"PROMETHEUS_MULTIPROC_DIR"} - set(env or {}))
    with tempfile.TemporaryFile() if stderr_path is None else stderr_path.open("w+b") as stderr:
        proc = subprocess.Popen(
            list(argv),
            env={k: v for k, v in {**os.environ, **(env or {})}.items() if k not in dropped},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            _wait_ready(proc, port, timeout, stderr)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_ready(
    proc: subprocess.Popen[bytes], port: int, timeout: float, stderr: IO[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stderr.seek(0)
            err = stderr.read().decode(errors="replace")
            raise RuntimeError(f"server exited with {proc.returncode}:\n{err[-3000:]}")
        for path in ("/healthz", "/docs"):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
        time.sleep(0.2)
    raise TimeoutError(f"server on port {port} not ready after {timeout}s")


def recserve_argv(port: int, workers: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def ceiling_argv(port: int, workers: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "loadtests.ceiling:app",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def process_memory(pids: Iterable[int]) -> list[dict[str, float]]:
    """RSS, PSS and USS (MB) of each of ``pids`` still running. PSS splits the pages several
    processes map (the model's weights file, the neighbour index) between them; USS counts
    only a process's own."""
    found = []
    for pid in pids:
        try:
            info = psutil.Process(pid).memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found.append(
            {
                "pid": pid,
                "rss_mb": round(info.rss / 2**20, 1),
                "pss_mb": round(info.pss / 2**20, 1),
                "uss_mb": round(info.uss / 2**20, 1),
            }
        )
    return found
