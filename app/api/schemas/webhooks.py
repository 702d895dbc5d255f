"""``/admin/webhooks``: dead-lettered deliveries and their replay."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DeadLetterOut(BaseModel):
    delivery_id: str = Field(description="Stays the same when replayed: receivers dedupe on it.")
    endpoint: str = Field(description="The configured endpoint name.")
    kind: str = Field(description="Event kind, e.g. `engagement.click`.")
    attempts: int = Field(description="Failed attempts before it was parked.")
    last_error: str | None = Field(description="The last attempt's failure, e.g. `HTTP 500`.")
    created_at: float = Field(description="When it was enqueued (Unix seconds).")
    dead_at: float = Field(description="When it was parked (Unix seconds).")
    payload: dict[str, Any] = Field(description="The JSON body that would be delivered.")


class DeadLettersOut(BaseModel):
    dead_letters: list[DeadLetterOut] = Field(description="Oldest parked first.")
    count: int = Field(description="len(dead_letters).")


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_ids: list[str] | None = Field(
        None,
        max_length=10_000,
        description="Dead letters to replay; omitted or null replays every one.",
    )


class ReplayOut(BaseModel):
    replayed: int = Field(description="Dead letters moved back to the outbox (unknown ids skip).")
