"""One batch run per home at a time: builds, segment refreshes and rollbacks all switch the
same directories and online store, so a second run waits for none and refuses at once."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "batch.lock"


class BatchBusy(Exception):
    """Another batch run holds the home's lock."""


def lock_path(home: Path) -> Path:
    return home / LOCK_FILE


@contextmanager
def batch_lock(home: Path, what: str) -> Iterator[None]:
    """Hold ``HOME/batch.lock`` (``flock``, released by the kernel even when the process
    dies) for the block; raise ``BatchBusy`` naming the holder when another run has it."""
    home.mkdir(parents=True, exist_ok=True)
    path = lock_path(home)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise BatchBusy(
                f"another batch run holds {path} ({holder}); {what} not started, try again "
                "when it has finished"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}: {what}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
