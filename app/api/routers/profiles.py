"""``/users/{user_id}/profile``: what the online store holds about a user, as served."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path

from app.api.deps import EngineDep
from app.api.schemas.profiles import BehaviourOut, CategoryShare, ProfileResponse
from app.features.client import FeatureStoreError
from app.features.schema import UserFeatures

router = APIRouter(tags=["profiles"])

RECENT_ITEMS_SHOWN = 20


@router.get(
    "/users/{user_id}/profile",
    response_model=ProfileResponse,
    summary="A user's profile",
    description=(
        "The user's online profile as recommendations see it: static attributes, behaviour "
        "(recent items newest first, recency/frequency/monetary, category affinity) and the "
        "RFM segment from the last `recserve segment` run (`new` for users known only by "
        "attributes). Real-time events show here as soon as `POST /events` returns."
    ),
    responses={
        404: {"description": "The online store has nothing for this user."},
        503: {"description": "The online feature store is unavailable."},
    },
)
async def get_profile(
    engine: EngineDep,
    user_id: Annotated[str, Path(min_length=1, max_length=256, description="The user's id.")],
) -> ProfileResponse:
    try:
        # A synchronous store read: off the event loop.
        features = await asyncio.to_thread(engine.features.get_user, user_id)
    except FeatureStoreError as exc:
        raise HTTPException(status_code=503, detail=f"feature store unavailable: {exc}") from exc
    if features is None:
        raise HTTPException(status_code=404, detail=f"no profile for user {user_id!r}")
    return profile_of(features)


def profile_of(features: UserFeatures) -> ProfileResponse:
    return ProfileResponse(
        user_id=features.user_id,
        attributes=_attributes(features.attributes_json),
        attribute_tokens=list(features.attribute_tokens),
        behaviour=BehaviourOut(
            recent_items=list(reversed(features.history_items[-RECENT_ITEMS_SHOWN:])),
            interaction_count=features.interaction_count,
            recency_days=features.recency_days,
            frequency_30d=features.frequency_30d,
            monetary=features.monetary,
            last_event_at=features.last_event_at,
            top_categories=[
                CategoryShare(category=c, share=round(s, 4))
                for c, s in zip(features.top_categories, features.top_category_scores, strict=False)
            ],
        ),
        segment=features.segment,
    )


def _attributes(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    decoded = orjson.loads(raw)
    return decoded if isinstance(decoded, dict) else {}
