"""``/users/{user_id}``: consent, erasure and export of what is held about a user (admin)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.deps import UserDataDep
from app.api.strict_json import StrictJsonRoute
from app.events.types import EventLogUnavailable
from app.experiments.attribution import ExposureStoreUnavailable
from app.features.client import FeatureStoreError
from app.feedback.types import FeedbackUnavailable
from app.privacy.consent import ConsentChange, ConsentRecord, ConsentUnavailable, Purpose
from app.privacy.erasure import ErasureFailed

router = APIRouter(tags=["privacy"], route_class=StrictJsonRoute)

UserIdPath = Annotated[str, Path(min_length=1, max_length=256, description="The user's id.")]
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "A store holding the user's data is unavailable."}
}


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


@router.put(
    "/users/{user_id}/consent",
    response_model=ConsentOut,
    summary="Set a user's consent",
    description="Record consent per purpose (timestamped, with history). From the next request "
    "on, in every worker: without `personalization`, `/recommend` serves popular items and reads "
    "no profile; without `tracking`, `POST /events` stores none of the user's events.",
    responses=_UNAVAILABLE,
)
async def put_consent(user_data: UserDataDep, user_id: UserIdPath, body: ConsentIn) -> ConsentOut:
    consent = user_data.consent
    try:
        resolved, record = await consent.update(user_id, body.changes())
        history = await consent.history(user_id)
    except ConsentUnavailable as exc:
        raise HTTPException(status_code=503, detail=f"consent store unavailable: {exc}") from exc
    return _consent_out(user_id, resolved, record, history)


@router.get(
    "/users/{user_id}/consent",
    response_model=ConsentOut,
    summary="A user's consent",
    description="Consent in force per purpose (defaults for purposes never chosen) and history.",
    responses=_UNAVAILABLE,
)
async def get_consent(user_data: UserDataDep, user_id: UserIdPath) -> ConsentOut:
    consent = user_data.consent
    try:
        resolved, record = await consent.current(user_id)
        history = await consent.history(user_id)
    except ConsentUnavailable as exc:
        raise HTTPException(status_code=503, detail=f"consent store unavailable: {exc}") from exc
    return _consent_out(user_id, resolved, record, history)


@router.delete(
    "/users/{user_id}",
    response_model=ErasureOut,
    summary="Erase a user",
    description="Remove the user from the event log, the online feature store, the batch "
    "tables, the consent store, the experiment exposure store, the webhook outbox, the "
    "feedback store and every cache tier, and list their pseudonym for erasure so the next "
    "build drops them from its source. Idempotent: after a 503, repeat it.",
    responses=_UNAVAILABLE,
)
async def erase_user(user_data: UserDataDep, user_id: UserIdPath) -> ErasureOut:
    try:
        report = await user_data.erase(user_id)
    except ErasureFailed as exc:
        raise HTTPException(
            status_code=503, detail=f"erasure incomplete, repeat it: {exc}"
        ) from exc
    return ErasureOut(user_id=user_id, **dataclasses.asdict(report))


@router.get(
    "/users/{user_id}/export",
    response_model=ExportOut,
    summary="Export what is held about a user",
    description="Consent and its history, online profile features, logged events, batch "
    "table rows, experiment exposures and feedback. Reads the whole event log: an occasional admin "
    "operation.",
    responses=_UNAVAILABLE,
)
async def export_user(user_data: UserDataDep, user_id: UserIdPath) -> ExportOut:
    try:
        export = await user_data.export(user_id)
    except (
        ConsentUnavailable,
        FeatureStoreError,
        EventLogUnavailable,
        ExposureStoreUnavailable,
        FeedbackUnavailable,
    ) as exc:
        raise HTTPException(status_code=503, detail=f"store unavailable: {exc}") from exc
    return ExportOut(user_id=user_id, **dataclasses.asdict(export))


def _consent_out(
    user_id: str,
    resolved: dict[Purpose, bool],
    record: ConsentRecord | None,
    history: list[ConsentChange],
) -> ConsentOut:
    chosen = record.choices if record is not None else {}
    return ConsentOut(
        user_id=user_id,
        personalization=resolved[Purpose.PERSONALIZATION],
        tracking=resolved[Purpose.TRACKING],
        defaulted=[purpose.value for purpose in Purpose if purpose.value not in chosen],
        updated_at=record.updated_at if record is not None else None,
        history=[ConsentChangeOut(changes=c.changes, at=c.at) for c in history],
    )
