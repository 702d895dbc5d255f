"""Per-event validation: every rule's reason names its field, and bad events never take good
ones down with them."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from app.events.schemas import (
    MAX_BATCH_EVENTS,
    EventBatchIn,
    EventBatchOut,
    EventIn,
    EventRejection,
    validate_events,
)
from app.events.types import AppendResult, CorruptLogEntry, Event

NOW = time.time()


def raw_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "e1",
        "user_id": "u1",
        "item_id": "i1",
        "type": "click",
        "timestamp": 1_700_000_000,
    }
    event.update(overrides)
    return {key: value for key, value in event.items() if value is not None}


def reason_for(**overrides: Any) -> str:
    events, rejections = validate_events([raw_event(**overrides)])
    assert events == []
    return rejections[0].reason


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1_700_000_000, 1_700_000_000.0),
        (1_700_000_000.25, 1_700_000_000.25),
        (1_700_000_000_250, 1_700_000_000.25),  # milliseconds
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000.0),
        ("2023-11-14T22:13:20", 1_700_000_000.0),  # no offset: UTC
    ],
)
def test_timestamps_normalise_to_unix_seconds(timestamp: object, expected: float) -> None:
    events, rejections = validate_events([raw_event(timestamp=timestamp)])
    assert rejections == []
    assert events[0].timestamp == expected


def test_a_valid_event_keeps_every_field() -> None:
    events, _ = validate_events(
        [raw_event(type="purchase", value=12.5, context={"page": "cart", "slot": 3})]
    )
    assert events == [
        Event("e1", "u1", "i1", "purchase", 1_700_000_000.0, 12.5, {"page": "cart", "slot": 3})
    ]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"event_id": ""}, "event_id: String should have at least 1 character"),
        ({"event_id": "x" * 129}, "event_id: String should have at most 128 characters"),
        ({"event_id": 17}, "event_id: Input should be a valid string"),
        ({"user_id": "u" * 257}, "user_id: String should have at most 256 characters"),
        ({"item_id": None}, "item_id: Field required"),
        ({"type": "like"}, "type: Input should be 'view', 'click', 'add_to_cart'"),
        ({"timestamp": 946_684_799}, "timestamp: before 2000-01-01"),
        ({"timestamp": NOW + 2 * 86_400}, "timestamp: in the future"),
        ({"timestamp": (NOW + 2 * 86_400) * 1000}, "timestamp: in the future"),
        ({"timestamp": "yesterday"}, "timestamp: not an ISO-8601 date-time: 'yesterday'"),
        ({"timestamp": True}, "timestamp: must be a number or an ISO-8601 string, got a bool"),
        ({"timestamp": float("nan")}, "timestamp: must be a finite number"),
        ({"timestamp": [1]}, "timestamp: must be a number or an ISO-8601 string, got list"),
        ({"value": float("inf")}, "value: Input should be a finite number"),
        ({"value": "lots"}, "value: Input should be a valid number"),
        ({"context": ["a"]}, "context: Input should be a valid dictionary"),
        ({"context": {"blob": "x" * 5000}}, "context: 5011 bytes once serialised, over the 4096"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_each_rule_names_its_field(overrides: dict[str, Any], reason: str) -> None:
    assert reason_for(**overrides).startswith(reason)


def test_a_context_of_exactly_the_limit_is_accepted() -> None:
    context = {"k": "x" * (4096 - len(orjson.dumps({"k": ""})))}
    assert len(orjson.dumps(context)) == 4096
    events, rejections = validate_events([raw_event(context=context)])
    assert (len(events), rejections) == (1, [])


def test_several_problems_are_all_reported() -> None:
    reason = reason_for(user_id="", type="like")
    assert reason.startswith("user_id: ")
    assert "; type: " in reason


def test_one_bad_event_keeps_the_others() -> None:
    raw = [
        raw_event(event_id="good1"),
        raw_event(event_id="bad", timestamp=NOW + 10 * 86_400),
        raw_event(event_id="good2"),
        raw_event(event_id=None, user_id=""),
        "not an object",
    ]
    events, rejections = validate_events(raw)
    assert [event.event_id for event in events] == ["good1", "good2"]
    assert [(r.index, r.event_id) for r in rejections] == [(1, "bad"), (3, None), (4, None)]
    assert rejections[2].reason.startswith("event: Input should be a valid dictionary")


def test_within_batch_duplicates_pass_validation_for_the_log_to_report() -> None:
    events, _ = validate_events([raw_event(), raw_event()])
    assert len(events) == 2


def test_batch_envelope_rejects_more_than_the_maximum_naming_the_field() -> None:
    EventBatchIn.model_validate({"events": [raw_event()] * MAX_BATCH_EVENTS})
    with pytest.raises(ValidationError) as caught:
        EventBatchIn.model_validate({"events": [raw_event()] * (MAX_BATCH_EVENTS + 1)})
    assert caught.value.errors()[0]["loc"] == ("events",)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ("events",)),
        ({"events": "all"}, ("events",)),
        ({"events": [1]}, ("events", 0)),
        ([], ()),  # not an object: FastAPI reports it at ("body",)
    ],
)
def test_malformed_envelope_is_an_error_naming_the_field(body: object, loc: tuple[Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        EventBatchIn.model_validate(body)
    assert caught.value.errors()[0]["loc"] == loc


def test_batch_answer_counts_each_outcome() -> None:
    rejection = EventRejection(index=2, event_id="x", reason="type: bad")
    answer = EventBatchOut.from_outcome(AppendResult(("a", "b"), ("a",)), [rejection], ["c"])
    assert answer.model_dump() == {
        "accepted": ["a", "b"],
        "duplicates": ["a"],
        "rejected": [{"index": 2, "event_id": "x", "reason": "type: bad"}],
        "accepted_count": 2,
        "duplicate_count": 1,
        "rejected_count": 1,
        "not_consented": ["c"],
        "not_consented_count": 1,
        "recommendations": [],
    }


def test_every_wire_field_has_a_description() -> None:
    for model in (EventIn, EventBatchIn, EventBatchOut, EventRejection):
        for name, prop in model.model_json_schema()["properties"].items():
            assert prop.get("description"), f"{model.__name__}.{name}"


def test_event_bytes_round_trip_and_are_compact() -> None:
    event = Event("e1", "u1", "i1", "rate", 1_700_000_000.5, 4.0, {"a": [1, 2]})
    data = event.to_bytes()
    assert b" " not in data
    assert Event.from_bytes(data) == event
    bare = Event("e2", "u1", "i1", "view", 1_700_000_000.0)
    assert b"value" not in bare.to_bytes()
    assert Event.from_bytes(bare.to_bytes()) == bare


@pytest.mark.parametrize("data", [b"not json", b'{"event_id": "e1"}', b"[]"])
def test_a_corrupt_entry_names_its_position(data: bytes) -> None:
    with pytest.raises(CorruptLogEntry, match="entry 42"):
        Event.from_bytes(data, "42")
