"""A minimal circuit breaker: after a failure, stop calling a backend for a while.

One failure opens the circuit. While open, ``allow()`` says no, so callers skip the backend
instead of each paying a timeout. Once ``retry_after_seconds`` have passed the circuit is
half-open: exactly one caller is let through as a trial. The trial's ``record_success()``
closes the circuit; its ``record_failure()`` opens it for another full delay. A trial that
never reports (its task was cancelled) does not wedge the breaker: another trial is granted
after a further delay.

Not thread-safe: it is meant for one asyncio event loop, where nothing interleaves between
``allow()`` and the state change it makes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are refused until the retry delay has passed
    HALF_OPEN = "half_open"  # one trial call is in flight; others are refused


class CircuitBreaker:
    """Refuse calls for ``retry_after_seconds`` after a failure, then allow one trial."""

    def __init__(
        self, retry_after_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if retry_after_seconds <= 0:
            raise ValueError(f"retry_after_seconds must be > 0, got {retry_after_seconds}")
        self._retry_after = retry_after_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._next_trial_at = 0.0  # meaningful only while open or half-open

    @property
    def state(self) -> BreakerState:
        """The state as of the last call; an open circuit whose delay has passed still says open
        until ``allow()`` hands out the trial."""
        return self._state

    def allow(self) -> bool:
        """True when the caller may call the backend now (and must then record the outcome)."""
        if self._state is BreakerState.CLOSED:
            return True
        now = self._clock()
        if now < self._next_trial_at:
            return False
        # Grant one trial; if it never reports back, the next one comes a full delay later.
        self._state = BreakerState.HALF_OPEN
        self._next_trial_at = now + self._retry_after
        return True

    def record_success(self) -> None:
        """The backend answered: close the circuit."""
        self._state = BreakerState.CLOSED

    def record_failure(self) -> None:
        """The backend failed: refuse calls for the next ``retry_after_seconds``."""
        self._state = BreakerState.OPEN
        self._next_trial_at = self._clock() + self._retry_after
