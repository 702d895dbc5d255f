"""``/recommend``: personalised items for one user."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import ServicesDep
from app.api.list_options import DisplayField
from app.api.responses import json_response
from app.api.schemas import RecommendBody, RecommendQuery, RecommendResponse
from app.api.state import Services
from app.artifacts import CatalogueItem
from app.observability.tracing import CURRENT
from app.serving.experiments import ExperimentTag
from app.serving.explain import Explanations, explain_recommendation
from app.serving.rules import ItemRules
from app.serving.types import Recommendation, RecommendRequest

router = APIRouter(tags=["recommendations"])

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
        filters=query.item_filter(),
    )
    return await _recommend(
        request,
        services,
        req,
        device=query.device,
        segment=query.segment,
        explain=query.explain,
        fields=query.fields or (),
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
        filters=body.item_filter(),
    )
    context = body.context or {}
    return await _recommend(
        request,
        services,
        req,
        device=_text(context.get("device")),
        segment=_text(context.get("segment")),
        explain=body.explain,
        fields=body.fields or (),
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
    fields: Sequence[DisplayField],
) -> Response:
    """Assign the user to an experiment variant, answer with its strategy, record the exposure."""
    if explain:  # computed afresh and not cached: the explanation must describe this answer
        req = replace(req, use_cache=False)
    assignment = await services.experiments.assign(req.user_id, segment=segment, device=device)
    rec = await services.recommender.recommend(req, assignment)
    tag = await services.experiments.record(assignment, rec.user_id, [i.item_id for i in rec.items])
    engine = services.engine
    explained = explain_recommendation(engine.model, engine.features, req, rec) if explain else None
    return _respond(request, rec, tag, explained, _display(engine.rules, rec, fields))


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
    rec: Recommendation,
    tag: ExperimentTag,
    explained: Explanations | None,
    display: dict[str, dict[str, object]],
) -> Response:
    context = CURRENT.get()
    request.state.source = rec.source.value
    items: list[dict[str, object]] = [
        {"item_id": i.item_id, "score": i.score, **display.get(i.item_id, {})} for i in rec.items
    ]
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
