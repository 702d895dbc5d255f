"""``/admin/webhooks``: inspect and replay dead-lettered CRM webhook deliveries (admin scope)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Query

from app.api.deps import WebhooksDep
from app.api.schemas.webhooks import DeadLetterOut, DeadLettersOut, ReplayIn, ReplayOut
from app.api.strict_json import StrictJsonRoute
from app.webhooks.types import DeadLetter, OutboxUnavailable

router = APIRouter(prefix="/admin/webhooks", tags=["webhooks"], route_class=StrictJsonRoute)

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "The webhook outbox is unavailable."}
}


@router.get(
    "/dead-letters",
    response_model=DeadLettersOut,
    summary="List dead-lettered webhook deliveries",
    responses=_UNAVAILABLE,
)
async def list_dead_letters(
    webhooks: WebhooksDep,
    limit: int = Query(100, ge=1, le=1000, description="At most this many, oldest first."),
) -> DeadLettersOut:
    try:
        parked = await webhooks.outbox.dead_letters(limit)
    except OutboxUnavailable as exc:
        raise HTTPException(503, f"webhook outbox unavailable: {exc}") from exc
    return DeadLettersOut(dead_letters=[_out(letter) for letter in parked], count=len(parked))


@router.post(
    "/replay",
    response_model=ReplayOut,
    summary="Send dead-lettered webhook deliveries again",
    description="Moves dead letters back to the outbox, due now with their attempt count reset; "
    "the delivery workers send them with their original delivery ids.",
    responses=_UNAVAILABLE,
)
async def replay(webhooks: WebhooksDep, body: ReplayIn | None = None) -> ReplayOut:
    delivery_ids = body.delivery_ids if body is not None else None
    try:
        replayed = await webhooks.outbox.replay(delivery_ids)
    except OutboxUnavailable as exc:
        raise HTTPException(503, f"webhook outbox unavailable: {exc}") from exc
    return ReplayOut(replayed=replayed)


def _out(letter: DeadLetter) -> DeadLetterOut:
    delivery = letter.delivery
    return DeadLetterOut(
        delivery_id=delivery.delivery_id,
        endpoint=delivery.endpoint,
        kind=delivery.kind,
        attempts=delivery.attempts,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        dead_at=letter.dead_at,
        payload=orjson.loads(delivery.body),
    )
