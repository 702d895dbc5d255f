"""deploy/scheduler.sh really runs the jobs: on a built home it skips the bootstrap build, then
its first turn consumes the event log and re-segments users, each logged as a JSON line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from app.settings import Settings
from tests.deploy.conftest import DEPLOY
from tests.integration.conftest import copy_home

pytestmark = pytest.mark.integration


def scheduler_lines(process: subprocess.Popen[bytes], until: str, timeout: float) -> list[str]:
    """The scheduler's own messages (JSON lines) up to the first containing ``until``."""
    assert process.stdout is not None
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith(b'{"ts"'):
            messages.append(orjson.loads(line)["msg"])
            if until in messages[-1]:
                return messages
    raise AssertionError(f"no {until!r} within {timeout}s; got {messages}")


def test_first_turn_consumes_and_segments(
    built_home: Settings, shop_source: Path, tmp_path: Path
) -> None:
    home = copy_home(built_home, tmp_path / "home")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "RECSERVE_HOME": str(home.home),
        "RECSERVE_DATA": str(shop_source),
        "BUILD_EVERY": "86400",
    }
    process = subprocess.Popen(
        ["sh", str(DEPLOY / "scheduler.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so the jobs it started stop with it
    )
    try:
        messages = scheduler_lines(process, "recserve segment", timeout=300)
        messages += scheduler_lines(process, "recserve segment", timeout=300)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    assert messages == [
        "start: recserve consume --once",
        "done: recserve consume --once",
        "start: recserve segment",
        "done: recserve segment",
    ]
    assert not any("build" in message for message in messages)  # a model was published
