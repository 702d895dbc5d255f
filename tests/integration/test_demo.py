"""``recserve demo`` as a new user runs it: a busy port stops it before any building, and a
restart keeps the events posted to it (reused build, or a rebuild that includes them)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from loadtests.server import free_port, running

pytestmark = pytest.mark.integration

USER = "u0000001"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = {
    "RECSERVE_EXPERIMENTS_FILE": str(EXAMPLES / "experiments.toml"),
    "RECSERVE_CONTENT_SLOTS_FILE": str(EXAMPLES / "content_slots.toml"),
    "RECSERVE_BUSINESS_RULES_FILE": str(EXAMPLES / "business_rules.toml"),
    "RECSERVE_WEBHOOKS__ENDPOINTS_FILE": str(EXAMPLES / "webhooks.toml"),
}
NOT_HERE = ("RECSERVE_REDIS_URL", "RECSERVE_MODELS_DIR")


def _demo_argv(home: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "app.cli", "--home", str(home), "demo", "--port", str(port)]


@contextmanager
def _demo(home: Path, timeout: float, env: dict[str, str] | None = None) -> Iterator[httpx.Client]:
    port = free_port()
    with (
        running(_demo_argv(home, port), port, env=env, timeout=timeout, unset=NOT_HERE),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as http,
    ):
        yield http


def _recent_items(http: httpx.Client) -> list[str]:
    response = http.get(f"/users/{USER}/profile")
    assert response.status_code == 200, response.text
    return list(response.json()["behaviour"]["recent_items"])


def test_a_busy_port_stops_the_demo_before_it_builds(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(
            _demo_argv(tmp_path / "home", port), capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert "--port" in done.stderr
    assert not (tmp_path / "home" / "models").exists()  # nothing was built
    assert time.monotonic() - started < 60


def test_a_restarted_demo_keeps_the_events_posted_to_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with _demo(home, timeout=900) as http:
        version = http.get("/readyz").json()["model_version"]
        item = next(
            i["item_id"] for i in http.get("/recommend", params={"user_id": USER}).json()["items"]
        )
        event = {
            "event_id": "demo-restart-1",
            "user_id": USER,
            "item_id": item,
            "type": "purchase",
            "timestamp": int(time.time()),
            "value": 9.5,
        }
        assert http.post("/events", json={"events": [event]}).json()["accepted"] == [
            "demo-restart-1"
        ]
        assert _recent_items(http)[0] == item

    # Same shop and build settings: the build is reused (a rebuild would take longer than
    # this timeout and publish a new version), and the profile still has the event. The
    # shipped examples are serve-time files: the demo starts with every one of them.
    with _demo(home, timeout=120, env=EXAMPLE_FILES) as http:
        assert http.get("/readyz").json()["model_version"] == version
        assert _recent_items(http)[0] == item
        assert all(e["running"] for e in http.get("/experiments").json()["experiments"])
        page = http.get(
            "/content-blocks", params={"slots": "home-top,books-under-50", "user_id": USER}
        )
        assert page.status_code == 200, page.text

    # A build setting changed: the demo rebuilds, trained on the logged event too.
    with _demo(home, timeout=900, env={"RECSERVE_SEGMENT_CLUSTERS": "3"}) as http:
        assert http.get("/readyz").json()["model_version"] != version
        assert item in _recent_items(http)
        again = http.post("/events", json={"events": [event]}).json()
        assert again["duplicates"] == ["demo-restart-1"]
