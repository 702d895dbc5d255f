"""Batch commands log in the server's JSON format when asked, or whenever stderr is not a
terminal (a scheduler's log file), so one log pipeline reads both."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest

from app.observability.logging import configure_batch_logging


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("log_format", ["json", None])  # None: stderr here is not a terminal
def test_batch_log_lines_are_json(
    capfd: pytest.CaptureFixture[str], log_format: str | None
) -> None:
    configure_batch_logging(log_format)
    logging.getLogger("app.jobs").info("copied %d events", 3)
    line = orjson.loads(capfd.readouterr().err.strip().splitlines()[-1])
    assert line["msg"] == "copied 3 events"
    assert {"ts", "level", "logger", "request_id", "trace_id"} <= line.keys()


def test_text_is_kept_when_asked_for(capfd: pytest.CaptureFixture[str]) -> None:
    configure_batch_logging("text")
    logging.getLogger("app.jobs").warning("plain")
    assert capfd.readouterr().err.strip().endswith("WARNING app.jobs plain")
