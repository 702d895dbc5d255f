"""Deliveries as the outbox stores them, and its failure type."""

from __future__ import annotations

from dataclasses import dataclass


class OutboxUnavailable(Exception):
    """The outbox cannot store or hand out deliveries right now."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message for one endpoint. ``body`` is the exact JSON sent and signed; ``delivery_id``
    stays the same on every attempt, so receivers dedupe on it. ``user_key`` is the keyed
    pseudonym of the user the body is about (None: about nobody): erasure finds the user's
    deliveries by it without reading bodies."""

    delivery_id: str
    endpoint: str
    kind: str
    body: bytes
    created_at: float
    attempts: int = 0  # failed attempts so far
    last_error: str | None = None
    user_key: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery that failed ``max_attempts`` times, parked until replayed."""

    delivery: Delivery
    dead_at: float


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Deliveries waiting (due, leased or backing off), the oldest one's age, dead letters."""

    depth: int
    oldest_age_seconds: float
    dead_letters: int
