"""Shared by the experiment API tests: an app on a private home with an experiments file, and
feedback events that carry a recommendation id."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.api.main import create_app
from app.settings import Settings
from tests.integration.conftest import copy_home


@contextmanager
def experiment_client(built_home: Settings, directory: Path, toml: str) -> Iterator[TestClient]:
    """The ASGI app on a copy of the built home (feedback changes it), with ``toml`` as its
    experiments file."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "experiments.toml"
    config.write_text(toml, encoding="utf-8")
    settings = copy_home(built_home, directory / "home").model_copy(
        update={"experiments_file": config}
    )
    with TestClient(create_app(settings)) as client:
        yield client


def two_arm_experiment(experiment_id: str, device: str, traffic_share: float = 1.0) -> str:
    """TOML of a 50/50 experiment (both arms the published model) for one device."""
    return f"""
[[experiments]]
id = "{experiment_id}"
traffic_share = {traffic_share}
control = "control"
min_detectable_effect = 0.2
targeting = {{ devices = ["{device}"] }}
[[experiments.variants]]
name = "control"
weight = 1
strategy = {{ kind = "model" }}
[[experiments.variants]]
name = "treatment"
weight = 1
strategy = {{ kind = "model" }}
"""


def feedback(
    kind: str, user_id: str, item_id: str, recommendation_id: Any, event_id: str | None = None
) -> dict[str, Any]:
    """A ``POST /events`` event attributed through ``context.recommendation_id``."""
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "user_id": user_id,
        "item_id": item_id,
        "type": kind,
        "timestamp": time.time(),
        "context": {"recommendation_id": recommendation_id},
    }


def post_events(client: TestClient, events: list[dict[str, Any]]) -> None:
    """Post in batches of the API's maximum size; every event must be accepted."""
    for start in range(0, len(events), 1000):
        response = client.post("/events", json={"events": events[start : start + 1000]})
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == [], response.json()["rejected"][:3]
