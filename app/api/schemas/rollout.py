"""Wire models of the rollout admin routes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.rollout.records import ModelChange, Rollout
from app.settings import RolloutSettings


class RolloutStatusResponse(BaseModel):
    champion: str | None = Field(description="The version CURRENT names.")
    challenger: str | None = Field(description="The version CHALLENGER names (null: none).")
    settings: RolloutSettings = Field(description="The rollout's configuration.")
    rollouts: list[Rollout] = Field(description="The latest rollouts, newest first.")
    changes: list[ModelChange] = Field(
        description="The latest model changes, newest first, with their before/after reports "
        "once the window after them has ended."
    )
