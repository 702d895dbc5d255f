"""Internal, already-validated event records and what the log answers.

``Event`` is built only by ``app.events.schemas.validate_events`` (or decoded from the log), so
code holding one can trust every field. Its byte form is compact orjson with ``None`` fields left
out; both backends store exactly these bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

# The online subset of ``app.data.types.EVENT_TYPES`` ("interaction" is for imported data).
EventType = Literal["view", "click", "add_to_cart", "purchase", "rate", "impression"]


class EventLogUnavailable(Exception):
    """The log cannot store or serve events right now; nothing was acknowledged."""


class EventLogOutcomeUnknown(EventLogUnavailable):
    """A write was sent but not confirmed (a timeout, a connection lost mid-reply): some or all
    of the batch may be stored. Retrying it with the same event ids is safe, since the log
    dedupes them."""


class CorruptLogEntry(ValueError):
    """A stored entry does not decode to an ``Event``; the message names the position."""


@dataclass(frozen=True, slots=True)
class Event:
    """One validated user interaction. ``timestamp`` is Unix seconds, UTC."""

    event_id: str
    user_id: str
    item_id: str
    type: EventType
    timestamp: float
    value: float | None = None
    context: dict[str, Any] | None = None

    def to_bytes(self) -> bytes:
        """Compact orjson; optional fields that are ``None`` are omitted."""
        record: dict[str, Any] = {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "item_id": self.item_id,
            "type": self.type,
            "timestamp": self.timestamp,
        }
        if self.value is not None:
            record["value"] = self.value
        if self.context is not None:
            record["context"] = self.context
        return orjson.dumps(record)

    @classmethod
    def from_bytes(cls, data: bytes, position: str = "?") -> Event:
        """Decode what ``to_bytes`` wrote; raise ``CorruptLogEntry`` naming ``position``."""
        try:
            record = orjson.loads(data)
            return cls(
                event_id=record["event_id"],
                user_id=record["user_id"],
                item_id=record["item_id"],
                type=record["type"],
                timestamp=float(record["timestamp"]),
                value=record.get("value"),
                context=record.get("context"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CorruptLogEntry(f"event log entry {position}: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event as stored: ``position`` is the backend's opaque, ordered id for it (the SQLite
    sequence number, or the Redis Stream entry id); pass it back to ``ack`` and ``iter_all``."""

    position: str
    event: Event


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Event ids newly stored by ``append``, and those already in the log (or earlier in the
    same batch), each in batch order."""

    appended: tuple[str, ...]
    duplicates: tuple[str, ...]
