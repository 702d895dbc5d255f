"""Through a real ``recserve serve`` with two workers: the drift job and the online quality
counts reach ``/metrics``, summed or maxed across the workers."""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.data.ingest import load_dataset
from app.settings import Settings
from tests.integration.conftest import copy_home, metric, serve, users_with_history

pytestmark = pytest.mark.integration

LIVE_EVENTS = 1_200  # above the drift job's minimum for a verdict on the event features


def psi_of(text: str, feature: str) -> float | None:
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "recserve_drift_psi" and sample.labels.get("feature") == feature
    ]
    return max(values) if values else None


def wait_for_metrics(http: httpx.Client, ready: object, seconds: float = 90.0) -> str:
    deadline = time.monotonic() + seconds
    while True:
        text = http.get("/metrics").text
        if ready(text):  # type: ignore[operator]
            return text
        assert time.monotonic() < deadline, "metrics did not appear in time"
        time.sleep(0.2)


def test_drift_and_online_quality_reach_metrics(built_home: Settings, tmp_path: Path) -> None:
    home = copy_home(built_home, tmp_path / "home")
    interactions = load_dataset(home.data_dir).interactions.tail(LIVE_EVENTS)
    now = time.time()
    events = [
        {
            "event_id": uuid.uuid4().hex,
            "user_id": str(user),
            "item_id": str(item),
            "type": "view",
            "timestamp": now,
        }
        for user, item in zip(interactions["user_id"], interactions["item_id"], strict=True)
    ]
    user = users_with_history(home)[0]
    env = {
        "RECSERVE_MONITORING__DRIFT_INTERVAL_SECONDS": "0.2",
        "RECSERVE_MONITORING__ONLINE_QUALITY_SHARE": "1",  # every answer, not a sample
    }
    with serve(home.home, workers=2, extra_env=env) as http:
        for start in range(0, len(events), 500):
            response = http.post("/events", json={"events": events[start : start + 500]})
            assert response.status_code == 200, response.text
        answer = http.get("/recommend", params={"user_id": user, "k": 3, "device": "mobile"}).json()
        shown = answer["items"][0]["item_id"]
        context = {"recommendation_id": answer["recommendation_id"]}
        feedback = [
            {
                "event_id": uuid.uuid4().hex,
                "user_id": user,
                "item_id": shown,
                "type": kind,
                "timestamp": time.time(),
                "context": context,
            }
            for kind in ("impression", "click")
        ]

        def counted(text: str) -> bool:
            return metric(text, "recserve_quality_exposures_total", device="mobile") >= 1

        wait_for_metrics(http, counted)  # the exposure is written before its feedback comes
        assert http.post("/events", json={"events": feedback}).status_code == 200

        def ready(text: str) -> bool:
            psi = psi_of(text, "item_popularity")
            clicks = metric(text, "recserve_quality_clicks_total", device="mobile")
            return psi is not None and not math.isnan(psi) and clicks >= 1

        text = wait_for_metrics(http, ready)
    labels = {"model_version": answer["model_version"], "source": answer["source"]}
    assert metric(text, "recserve_quality_impressions_total", **labels) == 1
    assert metric(text, "recserve_quality_clicks_total", **labels) == 1
    assert metric(text, "recserve_drift_runs_total", outcome="computed") >= 1
    # The live events replay the training data's last interactions: no drift to speak of.
    assert 0 <= (psi_of(text, "item_popularity") or 0) < 0.25
    assert psi_of(text, "score") is not None  # published, NaN until enough answers
