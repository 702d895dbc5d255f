"""Wire format of the HTTP API. Every field carries a description for the OpenAPI docs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.serving.types import FallbackReason, Source

USER_ID_FIELD = Field(
    min_length=1, max_length=256, description="The user to recommend for (any string id)."
)
K_FIELD = Field(ge=1, le=100, description="How many items to return (1..100).")


class RecommendBody(BaseModel):
    """``POST /recommend``: the query parameters of ``GET`` plus context and exclusions."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = USER_ID_FIELD
    k: int | None = Field(None, ge=1, le=100, description="How many items (default 10).")
    exclude: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Item ids never to return, on top of the user's own history.",
    )
    context: dict[str, Any] | None = Field(
        None, description="Free-form request context (page, device, ...), echoed to logs only."
    )


class ItemOut(BaseModel):
    item_id: str = Field(description="Item id as it appears in the catalogue.")
    score: float = Field(description="Ranking score; higher is better; comparable within a list.")


class RecommendResponse(BaseModel):
    user_id: str = Field(description="The user the list is for.")
    items: list[ItemOut] = Field(description="Recommended items, best first, distinct.")
    source: Source = Field(
        description="How the list was made: `personalized` (history), `cold_start` (known "
        "attributes, no history) or `popular` (unknown user or a fallback)."
    )
    cache: Literal["local", "redis"] | None = Field(
        None, description="The cache tier that answered, or null when computed now."
    )
    fallback_reason: FallbackReason | None = Field(
        None, description="Why the popularity fallback answered, when it did."
    )
    model_version: str = Field(description="Model version that produced the list.")
    request_id: str = Field(
        description="Unique id of this response (also the X-Request-ID header)."
    )


class DependencyStatus(BaseModel):
    ok: bool = Field(description="Whether the dependency answered its check.")
    detail: str = Field(description="What was checked, or what failed.")


class ReadinessResponse(BaseModel):
    ready: bool = Field(description="True when a model is loaded and requests can be served.")
    degraded: bool = Field(description="True when any dependency is down (fallbacks in use).")
    model_version: str | None = Field(description="Model version being served.")
    dependencies: dict[str, DependencyStatus] = Field(description="Each dependency's state.")


class SimilarItemsResponse(BaseModel):
    item_id: str = Field(description="The item the list is about.")
    items: list[ItemOut] = Field(
        description="Related items, best first, distinct, never the item itself; fewer than k "
        "when the item has fewer related items."
    )
    model_version: str = Field(description="Model version whose neighbour index answered.")
