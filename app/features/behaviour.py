"""A user's behaviour row as the event path reads, updates and writes it.

The history (up to ``HISTORY_MAX_ITEMS`` item ids with their last interaction times) stays in
the online store's protobuf lists from read to write. Turning a 2,000-item row into Python
tuples and back cost ~0.3 ms per user, most of an event batch; folding a few live events into
the lists costs a copy, a slice and an append, all in protobuf's C code.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.features.client import python_value

if TYPE_CHECKING:
    from feast.protos.feast.types.Value_pb2 import Value


def _value_type() -> Any:
    # Imported on first use: importing anything under ``feast`` imports Feast (seconds).
    from feast.protos.feast.types.Value_pb2 import Value

    return Value


def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


class History:
    """Distinct items oldest -> newest by last interaction (ties by item id), with those times
    in Unix seconds, held as two Feast ``Value`` protos (string list, int64 list)."""

    __slots__ = ("_encoded", "_items", "_times")

    def __init__(self, items: Value, times: Value) -> None:
        self._items = items
        self._times = times
        self._encoded: bytes | None = None

    @classmethod
    def of(cls, items: Sequence[str] = (), times: Sequence[int] = ()) -> History:
        if len(items) != len(times):
            raise ValueError(f"{len(items)} items but {len(times)} times")
        value = _value_type()
        item_list, time_list = value(), value()
        item_list.string_list_val.val.extend(items)
        time_list.int64_list_val.val.extend(times)
        return cls(item_list, time_list)

    def __len__(self) -> int:
        return len(self._items.string_list_val.val)

    @property
    def items(self) -> tuple[str, ...]:
        return tuple(self._items.string_list_val.val)

    @property
    def times(self) -> tuple[int, ...]:
        return tuple(self._times.int64_list_val.val)

    def protos(self) -> tuple[Value, Value]:
        """(items, times) as the online store keeps them."""
        return self._items, self._times

    def merged(self, latest: Mapping[str, int], cap: int) -> History:
        """A new history with ``latest`` (item -> its newest interaction time, non-empty)
        folded in, capped to the newest ``cap`` items.

        Each new item leaves its stored place (when it had an older one) and goes in where its
        (time, id) sorts: at the end for live events, by binary search for late ones, so a
        late event costs a search and a move in protobuf's C code, never a re-sort of the
        history in Python."""
        times = self._times.int64_list_val.val
        moved: list[int] = []
        placed: list[tuple[int, str]] = []
        for item, seconds in latest.items():
            position = self._position(item)
            if position is not None:
                if times[position] >= seconds:
                    continue  # the stored interaction is as new: it keeps its place
                moved.append(position)
            placed.append((seconds, item))
        value = _value_type()
        out_items, out_times = value(), value()
        out_items.CopyFrom(self._items)
        out_times.CopyFrom(self._times)
        new_items = out_items.string_list_val.val
        new_times = out_times.int64_list_val.val
        for position in sorted(moved, reverse=True):
            del new_items[position], new_times[position]
        for seconds, item in sorted(placed):
            at = bisect.bisect_right(new_times, seconds)
            # Equal times order by item id: step back over the tied ids sorting after it.
            while at > 0 and new_times[at - 1] == seconds and new_items[at - 1] > item:
                at -= 1
            if at == len(new_items):
                new_items.append(item)
                new_times.append(seconds)
            else:
                new_items.insert(at, item)
                new_times.insert(at, seconds)
        excess = len(new_items) - cap
        if excess > 0:
            del new_items[:excess], new_times[:excess]
        return History(out_items, out_times)

    def _position(self, item_id: str) -> int | None:
        """Where ``item_id`` is, found in the serialised list without making the stored ids
        Python strings (that cost more than the rest of the merge): look for its wire form
        (field tag, length, UTF-8), then count the elements before the match by parsing that
        prefix in C. A match inside another id's bytes fails the final check; search on."""
        from google.protobuf.message import DecodeError

        string_list = self._items.string_list_val
        if self._encoded is None:
            self._encoded = string_list.SerializeToString()
        data = item_id.encode()
        pattern = b"\n" + _varint(len(data)) + data
        stored = string_list.val
        offset = self._encoded.find(pattern)
        while offset >= 0:
            try:
                position = len(type(string_list).FromString(self._encoded[:offset]).val)
            except DecodeError:
                position = -1
            if 0 <= position < len(stored) and stored[position] == item_id:
                return position
            offset = self._encoded.find(pattern, offset + 1)
        return None


def _empty_history() -> History:
    return History.of()


@dataclass(frozen=True)
class BehaviourRow:
    """The ``USER_BEHAVIOUR_LIVE_FEATURES`` (``app.features.schema``) of one user."""

    user_id: str
    history: History = field(default_factory=_empty_history)
    interaction_count: int = 0
    recency_days: float | None = None
    frequency_30d: int = 0
    monetary: float = 0.0
    last_event_at: int | None = None

    @classmethod
    def from_values(cls, user_id: str, values: Mapping[str, Value]) -> BehaviourRow | None:
        """The row read from the online store; None when it holds nothing for the user."""
        if all(v.WhichOneof("val") in (None, "null_val") for v in values.values()):
            return None
        empty = _value_type()

        def scalar(name: str) -> Any:
            return python_value(values[name]) if name in values else None

        return cls(
            user_id,
            History(
                values.get("history_items", empty()), values.get("history_timestamps", empty())
            ),
            interaction_count=scalar("interaction_count") or 0,
            recency_days=scalar("recency_days"),
            frequency_30d=scalar("frequency_30d") or 0,
            monetary=scalar("monetary") or 0.0,
            last_event_at=scalar("last_event_at"),
        )

    def values(self) -> dict[str, Value]:
        """The row as Feast ``Value`` protos of the view's types, ready to write."""
        from feast.protos.feast.types.Value_pb2 import Value

        items, times = self.history.protos()
        recency, last_event = self.recency_days, self.last_event_at
        return {
            "history_items": items,
            "history_timestamps": times,
            "interaction_count": Value(int64_val=self.interaction_count),
            "recency_days": Value() if recency is None else Value(double_val=recency),
            "frequency_30d": Value(int64_val=self.frequency_30d),
            "monetary": Value(double_val=self.monetary),
            "last_event_at": Value() if last_event is None else Value(int64_val=last_event),
        }
