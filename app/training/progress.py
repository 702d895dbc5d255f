"""Progress lines of the batch build: each stage says when it starts and ends and, while it
runs, that it still does every ``interval`` seconds, so a long stage is never silent."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("app.build")
HEARTBEAT_SECONDS = 15.0


@contextmanager
def stage(
    name: str, seconds: dict[str, float], interval: float = HEARTBEAT_SECONDS
) -> Iterator[None]:
    """Log ``name`` starting, every ``interval`` s while it runs, and done; record its
    duration in ``seconds[name]``."""
    started = time.perf_counter()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(interval):
            log.info("%s: still running, %.0f s so far", name, time.perf_counter() - started)

    log.info("%s: started", name)
    beating = threading.Thread(target=heartbeat, name=f"progress-{name}", daemon=True)
    beating.start()
    try:
        yield
    finally:
        done.set()
        beating.join()
        seconds[name] = time.perf_counter() - started
    log.info("%s: done in %.1f s", name, seconds[name])
