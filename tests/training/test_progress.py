"""A long build stage is never silent: it logs its start, a line every interval while it
runs, and its end with the time taken."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from app.training.progress import stage


def test_a_stage_logs_start_heartbeats_and_end(caplog: pytest.LogCaptureFixture) -> None:
    seconds: dict[str, float] = {}
    with caplog.at_level(logging.INFO, logger="app.build"), stage("train", seconds, 0.05):
        time.sleep(0.3)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "train: started"
    assert sum("train: still running" in m for m in messages) >= 2
    assert messages[-1].startswith("train: done in 0.")
    assert seconds["train"] >= 0.3


def test_a_failing_stage_stops_its_heartbeat() -> None:
    seconds: dict[str, float] = {}
    with pytest.raises(RuntimeError), stage("ingest", seconds, 0.01):
        raise RuntimeError("bad input")
    assert "ingest" in seconds
    assert not any(t.name == "progress-ingest" for t in threading.enumerate())
