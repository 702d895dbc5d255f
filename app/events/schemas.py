"""Wire format of ``POST /events``: the batch envelope, one event, and the per-event answer.

FastAPI validates only the envelope (``EventBatchIn``), so a malformed body is a 422 naming the
field while one bad event never fails its batch: ``validate_events`` then checks each element on
its own and returns the valid ones as ``Event`` plus one ``EventRejection`` per invalid one.
Duplicate ids are not a validation matter: the log reports them (``AppendResult``), including a
repeat of an id earlier in the same batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from app.events.types import AppendResult, Event, EventType

MAX_BATCH_EVENTS = 1000
MAX_CONTEXT_BYTES = 4096
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
MAX_FUTURE_SECONDS = 24 * 3600
# Numbers above this are Unix milliseconds: 1e11 seconds is the year 5138, 1e11 ms is 1973.
MILLISECONDS_THRESHOLD = 1e11


class EventIn(BaseModel):
    """One interaction as a client sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(
        min_length=1,
        max_length=128,
        description="Client-chosen unique id; a repeated id is reported as a duplicate, so "
        "retrying a batch is safe.",
    )
    user_id: str = Field(min_length=1, max_length=256, description="Who interacted.")
    item_id: str = Field(min_length=1, max_length=256, description="With which item.")
    type: EventType = Field(description="Kind of interaction.")
    timestamp: float = Field(
        description="When it happened: Unix seconds (int or float), Unix milliseconds (any "
        "number above 1e11) or an ISO-8601 string (UTC when it has no offset). Stored as "
        "Unix seconds; must be after 2000-01-01 and at most one day in the future.",
    )
    value: float | None = Field(
        None,
        allow_inf_nan=False,
        description="Optional amount: a rating for `rate`, a price for `purchase`.",
    )
    context: dict[str, Any] | None = Field(
        None,
        description=f"Optional free-form JSON object (page, device, position...), at most "
        f"{MAX_CONTEXT_BYTES} bytes once serialised. A string `recommendation_id` (from the "
        "/recommend answer) attributes an impression, click, add_to_cart or purchase to the "
        "experiment variant and position that showed the item.",
    )

    @field_validator("timestamp", mode="before")
    @classmethod
    def _to_unix_seconds(cls, raw: object) -> float:
        if isinstance(raw, bool):  # a bool is an int to Python, never a time to a client
            raise ValueError("must be a number or an ISO-8601 string, got a boolean")
        if isinstance(raw, int | float):
            try:
                seconds = float(raw)
            except OverflowError:  # an integer beyond a double
                raise ValueError("out of range") from None
            if not math.isfinite(seconds):
                raise ValueError("must be a finite number")
            return seconds / 1000 if seconds > MILLISECONDS_THRESHOLD else seconds
        if isinstance(raw, str):
            try:
                parsed = datetime.fromisoformat(raw)
            except ValueError:
                raise ValueError(f"not an ISO-8601 date-time: {raw[:40]!r}") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.timestamp()
        raise ValueError(f"must be a number or an ISO-8601 string, got {type(raw).__name__}")

    @field_validator("timestamp")
    @classmethod
    def _within_range(cls, seconds: float) -> float:
        if seconds < EARLIEST_TIMESTAMP:
            raise ValueError("before 2000-01-01")
        if seconds > time.time() + MAX_FUTURE_SECONDS:
            raise ValueError("in the future (more than one day ahead)")
        return seconds

    @field_validator("context")
    @classmethod
    def _small_json(cls, context: dict[str, Any] | None) -> dict[str, Any] | None:
        if context is None:
            return None
        recommendation_id = context.get("recommendation_id")
        if recommendation_id is not None and not isinstance(recommendation_id, str):
            raise ValueError("recommendation_id must be a string")
        try:
            size = len(orjson.dumps(context))
        except TypeError as exc:
            raise ValueError(f"not serialisable as JSON: {exc}") from None
        if size > MAX_CONTEXT_BYTES:
            raise ValueError(f"{size} bytes once serialised, over the {MAX_CONTEXT_BYTES} limit")
        return context

    def to_event(self) -> Event:
        """The validated internal record."""
        return Event(
            event_id=self.event_id,
            user_id=self.user_id,
            item_id=self.item_id,
            type=self.type,
            timestamp=self.timestamp,
            value=self.value,
            context=self.context,
        )


class EventBatchIn(BaseModel):
    """Body of ``POST /events``. Elements are checked one by one after the envelope."""

    events: list[dict[str, Any]] = Field(
        max_length=MAX_BATCH_EVENTS,
        description=f"Up to {MAX_BATCH_EVENTS} event objects (see `EventIn`); each is validated "
        "on its own, so an invalid one is rejected without affecting the others.",
    )
    return_recommendations: bool = Field(
        False,
        description="When true, each user with a valid `add_to_cart` or `purchase` event in "
        "the batch gets complementary items in `recommendations` (for a cart page). Needs "
        "the `recommend` scope as well as `events` (403 before anything is stored).",
    )
    recommendations_k: int = Field(
        10, ge=1, le=100, description="How many complementary items per user (1..100)."
    )


class ComplementaryItem(BaseModel):
    item_id: str = Field(description="Item id as it appears in the catalogue.")
    score: float = Field(description="Relatedness to the cart; higher is better.")


class CartRecommendations(BaseModel):
    """Complementary items for one user's cart or purchase."""

    user_id: str = Field(description="The user whose events triggered the list.")
    trigger_items: list[str] = Field(
        description="The added or bought items of this batch, oldest first."
    )
    items: list[ComplementaryItem] = Field(
        description="Related items, best first; never a trigger or an item in the history."
    )


class EventRejection(BaseModel):
    """Why one event of a batch was not stored."""

    index: int = Field(description="Position of the event in the request's `events` list.")
    event_id: str | None = Field(
        description="The event's `event_id` when it sent a string one, else null."
    )
    reason: str = Field(
        description="What is wrong, starting with the field, e.g. "
        "`timestamp: in the future (more than one day ahead)`."
    )


class EventBatchOut(BaseModel):
    """Outcome of each event of a batch: every event is in exactly one of the four lists."""

    accepted: list[str] = Field(description="Event ids stored durably by this request.")
    duplicates: list[str] = Field(
        description="Event ids already stored (by an earlier request or earlier in this batch); "
        "not stored again."
    )
    rejected: list[EventRejection] = Field(description="Invalid events, with the reason each.")
    accepted_count: int = Field(description="len(accepted).")
    duplicate_count: int = Field(description="len(duplicates).")
    rejected_count: int = Field(description="len(rejected).")
    not_consented: list[str] = Field(
        default_factory=list,
        description="Valid event ids not stored because their user withheld `tracking` "
        "consent (PUT /users/{user_id}/consent).",
    )
    not_consented_count: int = Field(0, description="len(not_consented).")
    recommendations: list[CartRecommendations] = Field(
        default_factory=list,
        description="Complementary items per user, when `return_recommendations` was true.",
    )

    @classmethod
    def from_outcome(
        cls,
        result: AppendResult,
        rejected: Sequence[EventRejection],
        not_consented: Sequence[str] = (),
    ) -> EventBatchOut:
        """The answer for a batch whose valid events the log stored as ``result``."""
        return cls(
            accepted=list(result.appended),
            duplicates=list(result.duplicates),
            rejected=list(rejected),
            accepted_count=len(result.appended),
            duplicate_count=len(result.duplicates),
            rejected_count=len(rejected),
            not_consented=list(not_consented),
            not_consented_count=len(not_consented),
        )


def validate_events(raw: Sequence[object]) -> tuple[list[Event], list[EventRejection]]:
    """Validate each element of a batch on its own: valid ones in order, and one rejection per
    invalid one whose reason names the field (``field: problem``; several joined by ``; ``)."""
    events: list[Event] = []
    rejections: list[EventRejection] = []
    for index, item in enumerate(raw):
        try:
            events.append(EventIn.model_validate(item).to_event())
        except ValidationError as exc:
            event_id = item.get("event_id") if isinstance(item, dict) else None
            rejections.append(
                EventRejection(
                    index=index,
                    event_id=event_id if isinstance(event_id, str) else None,
                    reason="; ".join(_describe(error) for error in exc.errors()),
                )
            )
    return events, rejections


def _describe(error: ErrorDetails) -> str:
    """``field: message``, without pydantic's "Value error, " prefix on our own checks."""
    field = ".".join(str(part) for part in error["loc"]) or "event"
    context = error.get("ctx") or {}
    message = str(context["error"]) if error["type"] == "value_error" else error["msg"]
    return f"{field}: {message}"
