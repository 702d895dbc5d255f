"""The drift job over a real SQLite event log and a model directory, and ``recserve drift``."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import REGISTRY

from app.artifacts import CATALOGUE_FILE, CURRENT_POINTER, DRIFT_REFERENCE_FILE, ITEMS_FILE
from app.cli import main
from app.events.log import SQLITE_FILE
from app.events.log_sqlite import SqliteEventLog
from app.events.types import Event
from app.monitoring.answers import AnswerReservoir
from app.monitoring.drift import SampledAnswer
from app.monitoring.drift_job import DriftJob
from app.settings import Settings
from app.training.drift_reference import drift_reference

ITEMS = [f"i{n}" for n in range(20)]
CATEGORY = {item: "even" if int(item[1:]) % 2 == 0 else "odd" for item in ITEMS}


def publish_model(home: Path) -> Path:
    """A model directory holding what the drift job reads: the reference of a training set
    where users view every item alike, the items and their categories."""
    rows = [(f"u{n % 50}", ITEMS[n % 20], n) for n in range(2_000)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    reference = drift_reference(frame, CATEGORY, [0.1 * (n % 10) for n in range(200)], window=400)
    model_dir = home / "models" / "v1"
    model_dir.mkdir(parents=True)
    (model_dir / DRIFT_REFERENCE_FILE).write_text(reference.model_dump_json())
    (model_dir / ITEMS_FILE).write_text(json.dumps(ITEMS))
    catalogue = [{"item_id": i, "title": i, "categories": [CATEGORY[i]]} for i in ITEMS]
    (model_dir / CATALOGUE_FILE).write_text(json.dumps(catalogue))
    (home / "models" / CURRENT_POINTER).write_text("v1\n")
    return model_dir


async def append(log: SqliteEventLog, items: list[str], start: int) -> None:
    events = [
        Event(f"e{start + n}", f"u{n % 50}", item, "view", time.time())
        for n, item in enumerate(items)
    ]
    await log.append(events)


def gauge(feature: str) -> float | None:
    return REGISTRY.get_sample_value("recserve_drift_psi", {"feature": feature})


async def test_the_job_follows_the_log_and_publishes_each_features_psi(tmp_path: Path) -> None:
    model_dir = publish_model(tmp_path)
    log = SqliteEventLog(tmp_path / "events.db")
    reservoir = AnswerReservoir(capacity=500)
    job = DriftJob(log, lambda: model_dir, reservoir, min_events=300, min_answers=100)
    try:
        await append(log, [ITEMS[n % 20] for n in range(400)], 0)
        for n in range(300):
            reservoir.offer(SampledAnswer(0.1 * (n % 10), fallback=False, unknown_user=False))
        report = await job.run_once()
        assert report is not None
        steady = {f.feature: f.psi for f in report.features}
        assert all(value is not None and value < 0.1 for value in steady.values()), steady
        assert gauge("item_category") == pytest.approx(steady["item_category"])
        # Then only odd items, half of them new to the model: the mix and unknowns move.
        await append(
            log, [f"new{n}" if n % 2 else ITEMS[2 * (n % 10) + 1] for n in range(400)], 400
        )
        report = await job.run_once()
        assert report is not None
        drifted = {f.feature: f.psi for f in report.features}
    finally:
        await log.close()
    assert drifted["item_category"] is not None
    assert drifted["item_category"] > 0.25
    assert drifted["unknown_items"] is not None
    assert drifted["unknown_items"] > 0.25
    assert drifted["score"] == pytest.approx(steady["score"])  # no new answers: same sample
    share = REGISTRY.get_sample_value("recserve_drift_unknown_share", {"feature": "unknown_items"})
    assert share == pytest.approx(0.5)


async def test_a_model_without_reference_is_counted_not_measured(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    before = REGISTRY.get_sample_value("recserve_drift_runs_total", {"outcome": "no_reference"})
    try:
        assert await DriftJob(log, lambda: tmp_path).run_once() is None
    finally:
        await log.close()
    after = REGISTRY.get_sample_value("recserve_drift_runs_total", {"outcome": "no_reference"})
    assert (after or 0) - (before or 0) == 1


def write_events(path: Path, items: list[str], start: int) -> None:
    async def write() -> None:
        log = SqliteEventLog(path)
        try:
            await append(log, items, start)
        finally:
            await log.close()

    asyncio.run(write())


def test_cli_reports_text_or_json_and_exits_1_on_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    publish_model(home)
    monkeypatch.setenv("RECSERVE_HOME", str(home))
    settings = Settings()
    write_events(settings.events_dir / SQLITE_FILE, [ITEMS[n % 20] for n in range(1_200)], 0)
    assert main(["drift"]) == 0
    text = capsys.readouterr().out
    assert "item_category" in text
    assert "score" not in text  # answers are sampled by a server, not here
    assert main(["drift", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {f["feature"] for f in report["features"]} == {
        "user_activity", "item_popularity", "unknown_items", "item_category",
    }  # fmt: skip
    assert all(f["status"] == "ok" for f in report["features"])
    write_events(settings.events_dir / SQLITE_FILE, [f"new{n}" for n in range(1_200)], 10_000)
    assert main(["drift", "--json"]) == 1
    statuses = {f["feature"]: f["status"] for f in json.loads(capsys.readouterr().out)["features"]}
    assert statuses["unknown_items"] == "drift"
