"""``/events``: ingest user interactions; the next ``/recommend`` reflects them."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from app.api.auth import Access, Authenticator, presented_key
from app.api.deps import EngineDep, EventsDep
from app.api.strict_json import StrictJsonRoute
from app.events.schemas import MAX_BATCH_EVENTS, EventBatchIn, EventBatchOut
from app.events.types import EventLogOutcomeUnknown, EventLogUnavailable
from app.privacy.consent import ConsentUnavailable
from app.serving.surfaces.cart import cart_recommendations

router = APIRouter(tags=["events"], route_class=StrictJsonRoute)


@router.post(
    "/events",
    response_model=EventBatchOut,
    summary="Ingest a batch of events",
    description=(
        f"Up to {MAX_BATCH_EVENTS} interactions. Each event is validated on its own: the answer "
        "lists the ids stored (`accepted`), those already stored (`duplicates`, so retrying a "
        "batch is safe), the invalid ones with the reason (`rejected`) and those of users who "
        "withheld `tracking` consent (`not_consented`, not stored). Accepted events are "
        "durable when the call returns, and the users' next recommendations reflect them "
        "(history excluded, cache dropped). A malformed envelope is 422 naming the field."
    ),
    responses={
        503: {
            "description": "The event log or the consent store is unavailable: nothing was "
            "stored, or, when the log did not confirm a write in time, some events may be (the "
            "detail says which). Retrying with the same event ids is safe either way."
        }
    },
)
async def post_events(
    request: Request, events: EventsDep, engine: EngineDep, body: EventBatchIn
) -> EventBatchOut:
    if body.return_recommendations:
        # Recommendations are what the ``recommend`` scope guards: an events-only key (an
        # ingestion pipeline) must not read them through this door. Checked before anything
        # is stored, so a refusal leaves nothing half done.
        authenticator: Authenticator = request.app.state.authenticator
        authenticator.authorize(Access.RECOMMEND, await presented_key(request))
    try:
        outcome = await events.ingest(body.events)
    except EventLogOutcomeUnknown as exc:
        raise HTTPException(
            status_code=503,
            detail="event log did not confirm the write, so some or all events may be stored: "
            f"retry the batch with the same event ids (stored ones come back as duplicates): {exc}",
        ) from exc
    except EventLogUnavailable as exc:
        raise HTTPException(
            status_code=503, detail=f"event log unavailable, nothing was stored: {exc}"
        ) from exc
    except ConsentUnavailable as exc:
        raise HTTPException(
            status_code=503, detail=f"consent store unavailable, nothing was stored: {exc}"
        ) from exc
    if body.return_recommendations:
        outcome.recommendations = await cart_recommendations(
            engine, body.events, outcome, body.recommendations_k
        )
    return outcome
