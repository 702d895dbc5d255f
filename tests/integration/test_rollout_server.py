"""The guarded rollout end to end: a real ``recserve serve`` with a champion and a challenger
published, a synthetic population that clicks the challenger's lists less, impressions and
clicks posted over HTTP, and the server's job rolling the challenger back on its own; then the
rollback's before/after report, its webhook and its metrics."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from app.artifacts import (
    MANIFEST_FILE,
    challenger_version,
    current_version,
    point_challenger,
    read_manifest,
)
from app.settings import Settings
from loadtests.server import recserve_argv, running
from tests.api.experiment_support import feedback
from tests.integration.conftest import copy_home, metric
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.integration

CLICK_PROBABILITY = {"champion": 0.30, "challenger": 0.10}
PORTS = range(18500, 18600)
REPORT_WINDOW_SECONDS = 4.0


def _free_port(taken: set[int]) -> int:
    for port in PORTS:
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in the range")


def _publish_copy(models: Path, version: str, new_version: str) -> None:
    """Publish another version of the same model beside it (a second build's result)."""
    shutil.copytree(models / version, models / new_version)
    manifest = read_manifest(models / new_version).model_copy(update={"version": new_version})
    (models / new_version / MANIFEST_FILE).write_text(manifest.model_dump_json())


@contextmanager
def _server(home: Path, receiver: Receiver, port: int) -> Iterator[httpx.Client]:
    endpoint = {
        "name": "crm",
        "url": receiver.url,
        "secret": "rollout-test-secret-0123",
        "events": ["model.challenger_started", "model.rolled_back", "model.promoted"],
    }
    env = {
        "RECSERVE_HOME": str(home),
        "RECSERVE_MODEL_POLL_SECONDS": "0.3",
        "RECSERVE_ROLLOUT__TRAFFIC_SHARE": "0.5",
        "RECSERVE_ROLLOUT__DECIDE_SECONDS": "0.3",
        "RECSERVE_ROLLOUT__REPORT_WINDOW_SECONDS": str(REPORT_WINDOW_SECONDS),
        "RECSERVE_WEBHOOKS__ENDPOINTS": json.dumps([endpoint]),
        "RECSERVE_WEBHOOKS__POLL_INTERVAL_SECONDS": "0.1",
    }
    with (
        running(recserve_argv(port), port, env=env),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as http,
    ):
        yield http


def _visit(http: httpx.Client, user_id: str, rng: np.random.Generator) -> tuple[str, int]:
    """One page view: the list, its impressions, and clicks as the population makes them
    (outside the rollout, i.e. once it ended, everyone is served the champion)."""
    rec = http.get("/recommend", params={"user_id": user_id, "k": 5}).json()
    variant = rec["variant"] or "champion"
    events: list[dict[str, Any]] = []
    for item in rec["items"]:
        events.append(feedback("impression", user_id, item["item_id"], rec["recommendation_id"]))
        if rng.random() < CLICK_PROBABILITY[variant]:
            events.append(feedback("click", user_id, item["item_id"], rec["recommendation_id"]))
    assert http.post("/events", json={"events": events}).json()["accepted_count"] == len(events)
    return variant, len(rec["items"])


def _wait_for(http: httpx.Client, done: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = http.get("/admin/rollout").json()
        if done(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def test_a_worse_challenger_is_rolled_back_by_the_server_without_an_operator(
    built_home: Settings, tmp_path: Path
) -> None:
    home = copy_home(built_home, tmp_path / "home")
    models = home.model_root
    champion = current_version(models)
    assert champion is not None
    challenger = f"{champion}-challenger"
    _publish_copy(models, champion, challenger)
    point_challenger(models, challenger)
    receiver = Receiver()
    receiver.port = _free_port(set())
    receiver.start()
    rng = np.random.default_rng(7)
    try:
        with _server(home.home, receiver, _free_port({receiver.port})) as http:
            started = _wait_for(http, lambda s: bool(s["rollouts"]))
            assert started["challenger"] == challenger
            assert started["rollouts"][0]["status"] == "running"
            served = {"champion": 0, "challenger": 0}
            users = iter(range(10_000))
            while http.get("/admin/rollout").json()["rollouts"][0]["status"] == "running":
                variant, shown = _visit(http, f"population-{next(users)}", rng)
                served[variant] += shown
                assert served["challenger"] < 3000, "no decision within the stated sample"
            decided = http.get("/admin/rollout").json()
            rollout = decided["rollouts"][0]
            assert rollout["status"] == "rolled_back"
            assert rollout["decided_by"] == "test"
            assert "significantly worse" in rollout["reason"]
            assert decided["challenger"] is None
            assert decided["champion"] == champion
            assert challenger_version(models) is None
            # The workers follow the pointer: nobody is served the challenger any more.
            time.sleep(1.0)
            after = http.get("/recommend", params={"user_id": "population-after", "k": 5})
            assert after.json()["experiment_id"] is None

            change_id = f"rollback-{challenger}"
            change = http.get(f"/admin/rollout/changes/{change_id}").json()
            assert (change["kind"], change["from_version"], change["to_version"]) == (
                "rollback",
                challenger,
                champion,
            )
            for n in range(60):  # traffic after the change, for its report
                _visit(http, f"population-after-{n}", rng)
            reported = _wait_for(
                http,
                lambda s: any(c["report"] for c in s["changes"] if c["change_id"] == change_id),
                timeout=REPORT_WINDOW_SECONDS + 20,
            )
            report = next(c for c in reported["changes"] if c["change_id"] == change_id)["report"]
            # Before the rollback half the lists were the challenger's, clicked less; after it
            # every list is the champion's.
            assert report["before"]["impressions"] > 0
            assert report["after"]["impressions"] > 0
            assert report["after"]["ctr"]["value"] > report["before"]["ctr"]["value"]
            page = http.get(f"/ui/rollout/changes/{change_id}")
            assert page.status_code == 200
            assert 'id="before-after"' in page.text
            assert challenger in http.get("/ui/rollout").text

            text = http.get("/metrics").text
            assert (
                metric(
                    text,
                    "recserve_rollout_decisions_total",
                    decision="rolled_back",
                    decided_by="test",
                )
                == 1
            )
            assert metric(text, "recserve_rollout_reports_total") >= 1
            deadline = time.monotonic() + 10
            while len(receiver.accepted()) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        receiver.stop()
    kinds = [json.loads(r.body)["type"] for r in receiver.accepted()]
    assert kinds == ["model.challenger_started", "model.rolled_back"]
    rolled_back = json.loads(receiver.accepted()[1].body)["data"]
    assert rolled_back["challenger"] == challenger
    assert rolled_back["look"]["verdict"] == "rollback"
