"""``/recommend``: personalised items for one user."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from app.api.auth import may_read_profile
from app.api.deps import EngineDep, ServedListsDep, SettingsDep
from app.api.list_options import DisplayField
from app.api.responses import json_response
from app.api.schemas.recommend import RecommendBody, RecommendQuery, RecommendResponse
from app.api.strict_json import StrictJsonRoute
from app.artifacts import CatalogueItem
from app.observability.tracing import CURRENT
from app.serving.catalogue.rules import ItemRules
from app.serving.surfaces.served_lists import ServedRecommendation
from app.serving.types import Recommendation, RecommendRequest
from app.settings import Settings

router = APIRouter(tags=["recommendations"], route_class=StrictJsonRoute)

_DESCRIPTION = (
    "Top-k items for a user, excluding items they already interacted with (with `repeat=true`, "
    "their likely rebuys blended in, each item flagged `repeat`). Known users are "
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
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    served: ServedListsDep,
    query: Annotated[RecommendQuery, Query()],
) -> Response:
    req = RecommendRequest(
        user_id=query.user_id,
        k=query.k or settings.api.default_k,
        exclude=tuple(query.exclude or ()),
        use_cache=settings.cache.enabled,
        filters=query.item_filter(),
        repeat=query.repeat,
    )
    _check_explain_k(settings, req, query.explain, "query")
    answer = await served.recommend(
        req,
        segment=query.segment,
        device=query.device,
        explain=query.explain,
        profile_visible=await _profile_visible(request, req, query.explain),
    )
    display = _display(engine.rules, answer.recommendation, query.fields or ())
    return _respond(request, answer, display, repeat=req.repeat)


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    summary="Recommend items (POST)",
    description=_DESCRIPTION,
)
async def recommend_post(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    served: ServedListsDep,
    body: RecommendBody,
) -> Response:
    req = RecommendRequest(
        user_id=body.user_id,
        k=body.k or settings.api.default_k,
        exclude=tuple(body.exclude),
        use_cache=settings.cache.enabled,
        filters=body.item_filter(),
        repeat=body.repeat,
    )
    _check_explain_k(settings, req, body.explain, "body")
    context = body.context or {}
    answer = await served.recommend(
        req,
        segment=_text(context.get("segment")),
        device=_text(context.get("device")),
        explain=body.explain,
        profile_visible=await _profile_visible(request, req, body.explain),
    )
    display = _display(engine.rules, answer.recommendation, body.fields or ())
    return _respond(request, answer, display, repeat=req.repeat)


def _check_explain_k(settings: Settings, req: RecommendRequest, explain: bool, where: str) -> None:
    """422 naming ``k`` when an explained answer asks for more items than allowed."""
    limit = settings.api.max_explain_k
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


async def _profile_visible(request: Request, req: RecommendRequest, explain: bool) -> bool:
    """Whether the explanation may name the user's history and attributes (only asked when
    there is an explanation: the check reads the caller's key and user token)."""
    return explain and await may_read_profile(request, req.user_id)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _display(
    rules: ItemRules | None, rec: Recommendation, fields: Sequence[DisplayField]
) -> dict[str, dict[str, object]]:
    """The requested catalogue fields of each item (served stock flags), by item id."""
    if not fields:
        return {}
    shown: dict[str, dict[str, object]] = {}
    for item in rec.items:
        entry = (
            rules.display(item.item_id)
            if rules is not None
            else CatalogueItem(item_id=item.item_id, title=item.item_id)
        )
        shown[item.item_id] = {name: getattr(entry, name) for name in fields}
    return shown


def _respond(
    request: Request,
    answer: ServedRecommendation,
    display: dict[str, dict[str, object]],
    *,
    repeat: bool,
) -> Response:
    rec, tag, explained = answer.recommendation, answer.tag, answer.explained
    context = CURRENT.get()
    request.state.source = rec.source.value
    items: list[dict[str, object]] = [
        {"item_id": i.item_id, "score": i.score, **display.get(i.item_id, {})} for i in rec.items
    ]
    if repeat:
        for item in items:
            item["repeat"] = item["item_id"] in rec.repeats
    body = {
        "user_id": rec.user_id,
        "items": items,
        "source": rec.source.value,
        "cache": rec.cache_tier,
        "fallback_reason": rec.fallback_reason.value if rec.fallback_reason else None,
        "model_version": rec.model_version,
        # Outside the trace middleware (never in service) the list's own id stands in.
        "request_id": tag.recommendation_id if context is None else context.request_id,
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
    return json_response(body, headers=tag.headers())
