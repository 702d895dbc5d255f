"""Experiments on a real ``recserve serve --workers 2`` without Redis: every worker records into
the one SQLite exposure store, so the report counts all of them, feedback is attributed
whichever worker takes the event. (That a new process sees the counts, as after a restart, is
the contract's ``test_stores_on_the_same_storage_share_everything``.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.api.experiment_support import feedback, two_arm_experiment
from tests.integration.conftest import copy_home, reach_every_worker, serve

pytestmark = pytest.mark.integration

USERS = 120


def _recommend(http: httpx.Client, n: int) -> list[dict[str, Any]]:
    """One user's recommendation, as impression events carrying its recommendation id."""
    user_id = f"worker-user-{n}"
    params = {"user_id": user_id, "k": 3, "device": "web"}
    rec = http.get("/recommend", params=params).json()
    assert rec["experiment_id"] == "workers-ab"
    return [
        feedback("impression", user_id, item["item_id"], rec["recommendation_id"])
        for item in rec["items"]
    ]


def _post(http: httpx.Client, batch: list[dict[str, Any]]) -> None:
    assert http.post("/events", json={"events": batch}).json()["accepted_count"] == len(batch)


def test_two_workers_share_exposures_and_attribution(
    built_home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = copy_home(built_home, tmp_path / "home")
    config = tmp_path / "experiments.toml"
    config.write_text(two_arm_experiment("workers-ab", "web"))
    monkeypatch.setenv("RECSERVE_EXPERIMENTS_FILE", str(config))

    with serve(home.home, workers=2) as server:
        # A new connection per request and several at once, so both workers take requests.
        with (
            httpx.Client(
                base_url=server.base_url,
                timeout=5.0,
                limits=httpx.Limits(max_keepalive_connections=0),
            ) as http,
            ThreadPoolExecutor(max_workers=6) as pool,
        ):
            events = [
                e for batch in pool.map(lambda n: _recommend(http, n), range(USERS)) for e in batch
            ]
            list(pool.map(lambda s: _post(http, events[s : s + 30]), range(0, len(events), 30)))
            reach_every_worker(http, 2)
        report = server.get("/experiments/workers-ab/report").json()

    assert sum(v["exposures"] for v in report["variants"]) == USERS
    assert sum(v["impressions"] for v in report["variants"]) == len(events)
