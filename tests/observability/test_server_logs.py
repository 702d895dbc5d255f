"""A real ``recserve serve`` writes only JSON log lines, without user ids or client addresses."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from app.settings import Settings
from loadtests.server import free_port, recserve_argv, running
from tests.integration.conftest import copy_home, users_with_history

pytestmark = pytest.mark.integration


def test_server_logs_are_json_lines_without_personal_data(
    built_home: Settings, tmp_path: Path
) -> None:
    home = copy_home(built_home, tmp_path / "home")
    user = users_with_history(home)[0]
    port, log_path = free_port(), tmp_path / "server.log"
    with (
        running(
            recserve_argv(port), port, env={"RECSERVE_HOME": str(home.home)}, stderr_path=log_path
        ),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as http,
    ):
        assert http.get("/recommend", params={"user_id": user, "k": 5}).status_code == 200
        assert http.get("/recommend", params={"k": 5}).status_code == 422
    text = log_path.read_text()
    lines = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    assert any("serving model" in line["msg"] for line in lines)
    for line in lines:
        assert {"ts", "level", "logger", "msg", "request_id", "trace_id"} <= line.keys(), line
    assert user not in text
    assert "127.0.0.1:" not in text.replace(f"http://127.0.0.1:{port}", "")
