"""One consumer group's bookkeeping for the NATS backend, stored as one key-value entry.

``delivered_up_to`` is the last stream sequence handed to any consumer of the group;
``pending`` maps each delivered, unacked position to (consumer, delivered at, Unix seconds).
The entry stays small: it holds only events in flight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson


@dataclass(slots=True)
class GroupState:
    delivered_up_to: int = 0
    pending: dict[str, tuple[str, float]] = field(default_factory=dict)

    def owned_by(self, consumer: str) -> list[str]:
        """The consumer's pending positions, oldest first."""
        return sorted((p for p, (c, _) in self.pending.items() if c == consumer), key=int)

    def idle(self, delivered_before: float) -> list[str]:
        """Pending positions delivered at or before ``delivered_before``, oldest first."""
        idle = (p for p, (_, at) in self.pending.items() if at <= delivered_before)
        return sorted(idle, key=int)

    def hand_over(self, positions: Iterable[str], consumer: str, now: float) -> None:
        """Positions become ``consumer``'s pending events, delivered ``now``; the cursor moves
        past any that were new."""
        for position in positions:
            self.pending[position] = (consumer, now)
            self.delivered_up_to = max(self.delivered_up_to, int(position))

    def forget(self, positions: Iterable[str]) -> bool:
        """Drop positions from the pending set; True when any was there."""
        dropped = [p for p in positions if self.pending.pop(p, None) is not None]
        return bool(dropped)


def encode_state(state: GroupState) -> bytes:
    return orjson.dumps({"delivered_up_to": state.delivered_up_to, "pending": state.pending})


def decode_state(data: bytes) -> GroupState:
    record = orjson.loads(data)
    pending = {p: (c, float(at)) for p, (c, at) in record.get("pending", {}).items()}
    return GroupState(int(record.get("delivered_up_to", 0)), pending)
