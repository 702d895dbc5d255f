"""``/users/{user_id}/profile``: what serving knows of a user."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class CategoryShare(BaseModel):
    category: str = Field(description="Item category.")
    share: float = Field(description="Share of the user's interactions in this category (0..1).")


class BehaviourOut(BaseModel):
    recent_items: list[str] = Field(description="Distinct items, newest interaction first.")
    interaction_count: int = Field(description="Interactions on record.")
    recency_days: float | None = Field(description="Days since the last interaction.")
    frequency_30d: int = Field(description="Interactions in the last 30 days.")
    monetary: float = Field(description="Total purchase value.")
    last_event_at: int | None = Field(description="Unix time of the last interaction.")
    top_categories: list[CategoryShare] = Field(description="Category affinity, strongest first.")


class ProfileResponse(BaseModel):
    user_id: str = Field(description="The user.")
    attributes: dict[str, Any] = Field(description="Static attributes (demographics) as ingested.")
    attribute_tokens: list[str] = Field(description="Attributes as the model reads them.")
    behaviour: BehaviourOut = Field(description="Dynamic behaviour features.")
    segment: str | None = Field(
        description="RFM segment (`s1` most engaged ... `sk`; `new` for attribute-only users)."
    )
