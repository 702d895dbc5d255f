"""Shared by the privacy tests: events to post, an experiment and a CRM webhook so the exposure
store and the outbox hold the user too, and reading back what the stores hold."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from app.events.log import open_event_log
from app.events.types import Event
from app.experiments.store import open_exposure_store
from app.privacy.pseudonym import Pseudonymizer
from app.settings import Settings, WebhookSettings
from app.webhooks.outbox import open_outbox
from tests.api.experiment_support import feedback, two_arm_experiment

EXPERIMENT = "erasure-ab"


def event(user_id: str, item_id: str, kind: str = "view") -> dict[str, object]:
    return {
        "event_id": f"privacy-{uuid.uuid4().hex}",
        "user_id": user_id,
        "item_id": item_id,
        "type": kind,
        "timestamp": time.time(),
    }


def with_experiment_and_crm(settings: Settings, directory: Path) -> Settings:
    """``settings`` with an experiment every ``device=web`` request joins and a CRM endpoint
    subscribed to clicks that refuses connections, so each click's delivery is dead-lettered
    after its one attempt."""
    experiments = directory / "experiments.toml"
    experiments.write_text(two_arm_experiment(EXPERIMENT, device="web"), encoding="utf-8")
    crm = {"name": "crm", "url": "http://127.0.0.1:9/crm", "secret": "0123456789abcdef"}
    webhooks = WebhookSettings.model_validate(
        {"endpoints": [{**crm, "events": ["engagement.click"]}], "max_attempts": 1}
    )
    return settings.model_copy(update={"experiments_file": experiments, "webhooks": webhooks})


def served_and_clicked(client: TestClient, user_id: str) -> None:
    """A recommendation inside the experiment (an exposure) and a click on it (a delivery)."""
    served = client.get("/recommend", params={"user_id": user_id, "device": "web"}).json()
    assert served["experiment_id"] == EXPERIMENT
    click = feedback("click", user_id, served["items"][0]["item_id"], served["recommendation_id"])
    assert client.post("/events", json={"events": [click]}).json()["accepted_count"] == 1


def logged_events(settings: Settings) -> list[Event]:
    """Every event in the configured log (SQLite or Redis Stream)."""

    async def read_all() -> list[Event]:
        log = open_event_log(settings)
        try:
            found: list[Event] = []
            after = None
            while page := await log.iter_all(after):
                after = page[-1].position
                found.extend(logged.event for logged in page)
            return found
        finally:
            await log.close()

    return asyncio.run(read_all())


def batch_tables_holding(settings: Settings, user_id: str) -> list[str]:
    """Parquet files under the home's batch directories with a row of ``user_id``."""
    holding = []
    for directory in (settings.data_dir, settings.offline_dir, settings.event_parts_dir):
        for path in sorted(Path(directory).glob("*.parquet")):
            table = pq.read_table(path)
            if "user_id" in table.column_names and user_id in table.column("user_id").to_pylist():
                holding.append(str(path))
    return holding


def exposures_and_dead_letters(home: Settings, user_id: str) -> tuple[int, int]:
    """How many exposures and dead-lettered webhook deliveries the stores hold of the user."""

    async def read() -> tuple[int, int]:
        key = Pseudonymizer.from_settings(home).of(user_id)
        exposures, outbox = open_exposure_store(home), open_outbox(home)
        try:
            parked = [
                letter for letter in await outbox.dead_letters() if letter.delivery.user_key == key
            ]
            return len(await exposures.exposures_of(key)), len(parked)
        finally:
            await exposures.close()
            await outbox.close()

    return asyncio.run(read())


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
