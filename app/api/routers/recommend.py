"""``/recommend``: personalised items for one user."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import ServicesDep
from app.api.responses import json_response
from app.api.schemas import USER_ID_FIELD, RecommendBody, RecommendResponse
from app.serving.types import Recommendation, RecommendRequest

router = APIRouter(tags=["recommendations"])

_DESCRIPTION = (
    "Top-k items for a user, excluding items they already interacted with. Known users are "
    "scored by the ONNX hybrid model from their online features (history and attributes); "
    "unknown users, and any failing dependency, get the popularity fallback "
    "(`source: popular` with a `fallback_reason`). Never answers 5xx for a dependency failure."
)


@router.get(
    "/recommend",
    response_model=RecommendResponse,
    summary="Recommend items (GET)",
    description=_DESCRIPTION,
)
async def recommend_get(
    request: Request,
    services: ServicesDep,
    user_id: Annotated[
        str, Query(min_length=1, max_length=256, description=USER_ID_FIELD.description)
    ],
    k: Annotated[int | None, Query(ge=1, le=100, description="How many items (1..100).")] = None,
    exclude: Annotated[
        list[str] | None, Query(max_length=1000, description="Item ids never to return.")
    ] = None,
) -> Response:
    req = RecommendRequest(
        user_id=user_id,
        k=k or services.settings.api.default_k,
        exclude=tuple(exclude or ()),
        use_cache=services.settings.cache.enabled,
    )
    return _respond(request, await services.engine.recommend(req))


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    summary="Recommend items (POST)",
    description=_DESCRIPTION,
)
async def recommend_post(request: Request, services: ServicesDep, body: RecommendBody) -> Response:
    req = RecommendRequest(
        user_id=body.user_id,
        k=body.k or services.settings.api.default_k,
        exclude=tuple(body.exclude),
        use_cache=services.settings.cache.enabled,
    )
    return _respond(request, await services.engine.recommend(req))


def _respond(request: Request, rec: Recommendation) -> Response:
    request_id = uuid.uuid4().hex
    request.state.source = rec.source.value
    body = {
        "user_id": rec.user_id,
        "items": [{"item_id": i.item_id, "score": i.score} for i in rec.items],
        "source": rec.source.value,
        "cache": rec.cache_tier,
        "fallback_reason": rec.fallback_reason.value if rec.fallback_reason else None,
        "model_version": rec.model_version,
        "request_id": request_id,
    }
    return json_response(body, headers={"X-Request-ID": request_id})
