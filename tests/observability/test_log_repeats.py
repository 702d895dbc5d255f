"""Repeated warnings are written once per window, with the count of those dropped."""

from __future__ import annotations

import io
import logging
import logging.config

import orjson

from app.observability.log_repeats import RepeatFilter
from app.observability.logging import log_config


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _logger(name: str, clock: Clock) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatFilter(window_seconds=10, clock=clock))
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_a_warning_repeated_per_request_is_written_once_per_window_with_a_count() -> None:
    clock = Clock()
    logger, stream = _logger("repeats.a", clock)
    for n in range(1000):
        clock.now = n * 0.005  # 1,000 requests in 5 s
        logger.warning("exposure not recorded: %s", f"timeout {n}")
        logger.error("another failure: %s", n)
    clock.now = 12.0
    logger.warning("exposure not recorded: %s", "timeout again")
    lines = stream.getvalue().splitlines()
    assert lines == [
        "exposure not recorded: timeout 0",
        "another failure: 0",
        "exposure not recorded: timeout again (999 more like it dropped in the last 10 s)",
    ]


def test_info_lines_and_distinct_messages_all_pass() -> None:
    clock = Clock()
    logger, stream = _logger("repeats.b", clock)
    logger.warning("first kind")
    for n in range(5):
        logger.info("served %d", n)
        logger.warning("kind %d", n)
    assert len(stream.getvalue().splitlines()) == 5 + 2  # every info, two warning templates


def test_the_servers_log_configuration_applies_it(capsys: object) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logging.config.dictConfig(log_config("INFO"))
    try:
        log = logging.getLogger("app.test.repeats")
        for _ in range(50):
            log.warning("consent store failed")
        handler = logging.getLogger().handlers[0]
        assert any(isinstance(f, RepeatFilter) for f in handler.filters)
    finally:
        root.handlers, root.level = saved[0], saved[1]
    written = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]  # type: ignore[attr-defined]
    assert [line["msg"] for line in written] == ["consent store failed"]
