"""``/users/{user_id}``: consent, erasure and export."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.privacy.consent import Purpose


class ConsentIn(BaseModel):
    """The purposes to change; those left out keep their current value."""

    # "At least one of", stated in the schema too, so clients and generators know it.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": [purpose], "properties": {purpose: {"type": "boolean"}}}
                for purpose in ("personalization", "tracking")
            ]
        },
    )

    personalization: bool | None = Field(
        None, description="Rank items from the user's profile (else popular items, no profile)."
    )
    tracking: bool | None = Field(None, description="Store the user's events.")

    @model_validator(mode="after")
    def _sets_something(self) -> ConsentIn:
        if self.personalization is None and self.tracking is None:
            raise ValueError("give at least one of personalization, tracking")
        return self

    def changes(self) -> dict[Purpose, bool]:
        chosen = {Purpose.PERSONALIZATION: self.personalization, Purpose.TRACKING: self.tracking}
        return {purpose: granted for purpose, granted in chosen.items() if granted is not None}


class ConsentChangeOut(BaseModel):
    changes: dict[str, bool] = Field(description="The purposes this change set.")
    at: float = Field(description="When, Unix seconds.")


class ConsentOut(BaseModel):
    user_id: str
    personalization: bool = Field(description="In force now (the user's choice or the default).")
    tracking: bool = Field(description="In force now (the user's choice or the default).")
    defaulted: list[str] = Field(description="Purposes the user never chose: defaults apply.")
    updated_at: float | None = Field(description="Last change, Unix seconds; null if none.")
    history: list[ConsentChangeOut] = Field(description="Every change, oldest first.")


class ErasureOut(BaseModel):
    user_id: str
    erased_at: float = Field(description="Unix seconds; the erasure list keeps only a pseudonym.")
    events_deleted: int = Field(description="Events removed from the event log.")
    online_rows_deleted: int = Field(description="Rows removed from the Feast online store.")
    offline_rows_deleted: int = Field(description="Rows removed from batch tables under the home.")
    consent_deleted: bool = Field(description="Whether consent choices were held and deleted.")
    exposures_deleted: int = Field(
        description="Experiment exposures removed (the variants' anonymous counters stay)."
    )
    webhook_deliveries_deleted: int = Field(
        description="Waiting or dead-lettered webhook deliveries about the user removed."
    )
    feedback_deleted: int = Field(description="Feedback entries (not interested, ratings) removed.")


class ExposureOut(BaseModel):
    experiment_id: str
    variant: str
    served_at: float = Field(description="When the recommendation was served, Unix seconds.")


class ExportOut(BaseModel):
    user_id: str
    consent: dict[str, bool] = Field(description="Consent in force per purpose.")
    consent_updated_at: float | None
    consent_history: list[ConsentChangeOut]
    profile: dict[str, Any] | None = Field(description="Online features; null when none.")
    events: list[dict[str, Any]] = Field(description="Events in the event log, oldest first.")
    offline: dict[str, list[dict[str, Any]]] = Field(
        description="Rows of batch tables under the home (ingested data, offline features, "
        "event parts), by file."
    )
    exposures: list[ExposureOut] = Field(
        description="Experiment exposures still stored (within the attribution window), oldest "
        "first."
    )
    feedback: list[dict[str, Any]] = Field(
        description="Feedback the user gave (kind, target, target_id, rating, at), oldest first."
    )
    erased_at: float | None = Field(description="Last erasure, when the user was erased.")
