"""``/feedback``: a user's qualitative feedback, "not interested" and relevance ratings."""

from __future__ import annotations

from typing import NoReturn

from fastapi import APIRouter, HTTPException

from app.api.deps import EngineDep
from app.api.schemas.feedback import FeedbackIn, FeedbackOut
from app.api.strict_json import StrictJsonRoute
from app.feedback.types import FeedbackKind, FeedbackTarget, FeedbackUnavailable

router = APIRouter(tags=["feedback"], route_class=StrictJsonRoute)

# Which target each kind takes, by body field.
_TARGETS = {
    FeedbackKind.NOT_INTERESTED: {
        "item_id": FeedbackTarget.ITEM,
        "category": FeedbackTarget.CATEGORY,
    },
    FeedbackKind.RATING: {
        "item_id": FeedbackTarget.ITEM,
        "recommendation_id": FeedbackTarget.LIST,
    },
}


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    summary="Give feedback on an item, a category or a served list",
    description="Stored durably (erasure removes it). `not_interested` drops the user's cached "
    "lists, and their next `/recommend` answers and content blocks leave the item (or every "
    "item of the category) out. A body with no target, two targets, a target the kind does "
    "not take, or a rating missing or out of place is 422 naming the field.",
    responses={503: {"description": "The feedback store is unavailable; nothing was stored."}},
)
async def post_feedback(engine: EngineDep, body: FeedbackIn) -> FeedbackOut:
    target, target_id = _target(body)
    feedback = engine.feedback
    if feedback is None:  # the composition root always builds one
        raise HTTPException(503, "no feedback store")
    try:
        stored = await feedback.record(body.user_id, body.kind, target, target_id, body.rating)
    except FeedbackUnavailable as exc:
        raise HTTPException(503, f"feedback store unavailable, nothing was stored: {exc}") from exc
    if body.kind is FeedbackKind.NOT_INTERESTED and engine.cache is not None:
        await engine.cache.invalidate_user(body.user_id)
    return FeedbackOut(user_id=body.user_id, kind=body.kind, target=target, at=stored.at)


def _target(body: FeedbackIn) -> tuple[FeedbackTarget, str]:
    """The body's one target for its kind; 422 naming the field otherwise."""
    allowed = _TARGETS[body.kind]
    given = {name: getattr(body, name) for name in ("item_id", "category", "recommendation_id")}
    for name, value in given.items():
        if value is not None and name not in allowed:
            _refuse(name, f"not taken by kind {body.kind.value}")
    present = [name for name in allowed if given[name] is not None]
    if len(present) != 1:
        _refuse(next(iter(allowed)), f"give exactly one of {', '.join(allowed)}")
    if body.kind is FeedbackKind.RATING and body.rating is None:
        _refuse("rating", "required for kind rating")
    if body.kind is not FeedbackKind.RATING and body.rating is not None:
        _refuse("rating", f"not taken by kind {body.kind.value}")
    name = present[0]
    return allowed[name], str(given[name])


def _refuse(field: str, message: str) -> NoReturn:
    raise HTTPException(422, [{"loc": ["body", field], "msg": message, "type": "value_error"}])
