"""``/readyz``: the service's and its dependencies' state."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DependencyStatus(BaseModel):
    ok: bool = Field(description="Whether the dependency answered its check.")
    detail: str = Field(description="What was checked, or what failed.")


class ReadinessResponse(BaseModel):
    ready: bool = Field(description="True when a model is loaded and requests can be served.")
    degraded: bool = Field(description="True when any dependency is down (fallbacks in use).")
    model_version: str | None = Field(description="Model version being served.")
    dependencies: dict[str, DependencyStatus] = Field(description="Each dependency's state.")
