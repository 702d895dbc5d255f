"""``/recommend``: personalised items for one user."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from app.api.auth import may_read_profile
from app.api.deps import ServicesDep
from app.api.responses import json_response
from app.api.schemas import RecommendBody, RecommendQuery, RecommendResponse
from app.api.state import Services
from app.api.strict_json import StrictJsonRoute
from app.serving.experiments import ExperimentTag
from app.serving.explain import Explanations, explain_recommendation, item_level_only
from app.serving.types import Recommendation, RecommendRequest

router = APIRouter(tags=["recommendations"], route_class=StrictJsonRoute)

_DESCRIPTION = (
    "Top-k items for a user, excluding items they already interacted with. Known users are "
    "scored by the ONNX hybrid model from their online features (history and attributes); "
    "unknown users, and any failing dependency, get the popularity fallback "
    "(`source: popular` with a `fallback_reason`). Never answers 5xx for a dependency failure. "
    "Users in an A/B experiment get their variant's strategy; `recommendation_id`, "
    "`experiment_id` and `variant` say which (also as X-Recommendation-ID, X-Experiment-ID and "
    "X-Variant headers)."
)


@router.get(
    "/recommend",
    response_model=RecommendResponse,
    summary="Recommend items (GET)",
    description=_DESCRIPTION,
)
async def recommend_get(
    request: Request, services: ServicesDep, query: Annotated[RecommendQuery, Query()]
) -> Response:
    req = RecommendRequest(
        user_id=query.user_id,
        k=query.k or services.settings.api.default_k,
        exclude=tuple(query.exclude or ()),
        use_cache=services.settings.cache.enabled,
    )
    _check_explain_k(services, req, query.explain, "query")
    return await _recommend(
        request, services, req, device=query.device, segment=query.segment, explain=query.explain
    )


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
    _check_explain_k(services, req, body.explain, "body")
    context = body.context or {}
    return await _recommend(
        request,
        services,
        req,
        device=_text(context.get("device")),
        segment=_text(context.get("segment")),
        explain=body.explain,
    )


def _check_explain_k(services: Services, req: RecommendRequest, explain: bool, where: str) -> None:
    """422 naming ``k`` when an explained answer asks for more items than allowed."""
    limit = services.settings.api.max_explain_k
    if explain and req.k > limit:
        raise HTTPException(
            422,
            [
                {
                    "loc": [where, "k"],
                    "msg": f"at most {limit} with explain=true",
                    "type": "less_than_equal",
                }
            ],
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def _recommend(
    request: Request,
    services: Services,
    req: RecommendRequest,
    *,
    device: str | None,
    segment: str | None,
    explain: bool,
) -> Response:
    """Assign the user to an experiment variant, answer with its strategy, record the exposure."""
    if explain:  # computed afresh and not cached: the explanation must describe this answer
        req = replace(req, use_cache=False)
    assignment = await services.experiments.assign(req.user_id, segment=segment, device=device)
    rec = await services.recommender.recommend(req, assignment)
    tag = await services.experiments.record(assignment, rec.user_id, [i.item_id for i in rec.items])
    engine = services.engine
    explained = None
    if explain:
        explained = explain_recommendation(engine.model, engine.features, req, rec)
        if not await may_read_profile(request, req.user_id):
            explained = item_level_only(explained)
    return _respond(request, rec, tag, explained)


def _respond(
    request: Request, rec: Recommendation, tag: ExperimentTag, explained: Explanations | None
) -> Response:
    request_id = tag.recommendation_id
    request.state.source = rec.source.value
    items: list[dict[str, object]] = [{"item_id": i.item_id, "score": i.score} for i in rec.items]
    body = {
        "user_id": rec.user_id,
        "items": items,
        "source": rec.source.value,
        "cache": rec.cache_tier,
        "fallback_reason": rec.fallback_reason.value if rec.fallback_reason else None,
        "model_version": rec.model_version,
        "request_id": request_id,
        **tag.fields(),
    }
    if explained is not None:
        by_item = {e.item_id: e for e in explained.items}
        for item in items:
            explanation = by_item.get(str(item["item_id"]))
            item["explanation"] = (
                None
                if explanation is None
                else {k: v for k, v in asdict(explanation).items() if k != "item_id"}
            )
        body["explanation_unavailable"] = explained.unavailable
    return json_response(body, headers={"X-Request-ID": request_id, **tag.headers()})
