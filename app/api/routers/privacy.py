"""``/users/{user_id}``: consent, erasure and export of what is held about a user (admin)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from app.api.deps import UserDataDep
from app.api.schemas.privacy import (
    ConsentChangeOut,
    ConsentIn,
    ConsentOut,
    ErasureOut,
    ExportOut,
)
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
