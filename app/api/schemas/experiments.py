"""``/experiments``: the configured experiments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class VariantOut(BaseModel):
    name: str = Field(description="Variant name.")
    weight: float = Field(description="Relative share of the experiment's users.")
    strategy: dict[str, Any] = Field(description="How the variant ranks, as configured.")


class ExperimentOut(BaseModel):
    id: str = Field(description="Experiment id (use it in /experiments/{id}/report).")
    running: bool = Field(description="Between start and stop now.")
    traffic_share: float = Field(description="Fraction of eligible users enrolled.")
    control: str = Field(description="The variant others are compared with.")
    variants: list[VariantOut] = Field(description="In config order.")
    segments: list[str] | None = Field(description="Targeted segments; null: everyone.")
    devices: list[str] | None = Field(description="Targeted devices; null: every device.")
    start: datetime | None = Field(description="Inclusive start; null: already running.")
    stop: datetime | None = Field(description="Exclusive stop; null: open-ended.")


class ExperimentsOut(BaseModel):
    experiments: list[ExperimentOut] = Field(
        description="In config order, which is the order requests are offered to them."
    )
