"""Repeated warnings, logged once per window with a count instead of once per request.

During an outage every request logs the same warning (a Redis down logged 4,546 lines in
33 s): the log then costs I/O and buries everything else. ``RepeatFilter`` lets the first
record of each message template (per logger and level, WARNING and above) through, drops the
repeats for ``window_seconds``, and appends to the first record after the window how many it
dropped. Records below WARNING pass untouched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

DEFAULT_WINDOW_SECONDS = 10.0


class RepeatFilter(logging.Filter):
    def __init__(
        self,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # (logger, level, template) -> (when the last record passed, repeats dropped since)
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            passed_at, dropped = self._seen.get(key, (float("-inf"), 0))
            if now - passed_at < self._window:
                self._seen[key] = (passed_at, dropped + 1)
                return False
            self._seen[key] = (now, 0)
        if dropped:
            record.msg = (
                f"{record.getMessage()} ({dropped} more like it dropped in the last "
                f"{self._window:g} s)"
            )
            record.args = None
        return True
