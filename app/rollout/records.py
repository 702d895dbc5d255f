"""What the rollout records: each challenger's rollout and each model change with its report."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

RolloutStatus = Literal["running", "promoted", "rolled_back"]
ChangeKind = Literal["promotion", "rollback", "publish"]
DecidedBy = Literal["test", "operator"]


class Rollout(BaseModel):
    """One challenger's time beside the champion."""

    rollout_id: str = Field(description="Also the id of its experiment (assignment, exposures).")
    challenger: str = Field(description="The challenging model version.")
    champion: str = Field(description="The model version it is compared with.")
    traffic_share: float = Field(description="Share of all users the challenger serves.")
    started_at: float = Field(description="Unix time the rollout began.")
    status: RolloutStatus
    decided_at: float | None = Field(None, description="When it was promoted or rolled back.")
    decided_by: DecidedBy | None = Field(
        None, description="`test`: the sequential test; `operator`: `recserve rollout`."
    )
    reason: str = Field("", description="Why it was decided (the test's figures, or the CLI).")
    last_look: dict[str, Any] = Field(
        default_factory=dict, description="The latest look of the test: counts, interval, verdict."
    )


class ModelChange(BaseModel):
    """A change of the model serving users, and the before/after report once it is made."""

    change_id: str
    kind: ChangeKind = Field(
        description="`promotion` of a challenger, `rollback` of one, or `publish`: CURRENT "
        "changed outside the rollout (a build without it, `recserve data rollback`)."
    )
    at: float = Field(description="Unix time of the change.")
    from_version: str | None = Field(description="What served before (null: nothing).")
    to_version: str = Field(description="What serves after.")
    reason: str = ""
    report: dict[str, Any] | None = Field(
        None, description="The before/after report (``BeforeAfterReport``), once its window ended."
    )
