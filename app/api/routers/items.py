"""``/items/{item_id}/similar``: items related to one item."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response

from app.api.deps import EngineDep, SettingsDep
from app.api.responses import json_response
from app.api.schemas.items import SimilarItemsResponse
from app.serving.surfaces.similar import NoNeighbourIndexError, UnknownItemError, similar_items

router = APIRouter(prefix="/items", tags=["items"])


@router.get(
    # ``:path`` because item ids may contain ``/`` (and spaces, sent percent-encoded).
    "/{item_id:path}/similar",
    response_model=SimilarItemsResponse,
    summary="Items related to an item",
    description=(
        "Top-k items most related to `item_id`: bought or viewed together (EASE), sharing "
        "attributes (content) or typically next (transitions), blended as the model does. "
        "Read from an index precomputed at export. 404 for an item the model does not know; "
        "503 when the served model predates the index."
    ),
    responses={404: {"description": "Unknown item."}, 503: {"description": "No index."}},
)
async def similar(
    engine: EngineDep,
    settings: SettingsDep,
    item_id: Annotated[str, Path(min_length=1, max_length=256, description="The item id.")],
    k: Annotated[int | None, Query(ge=1, le=100, description="How many items (1..100).")] = None,
) -> Response:
    rules = engine.rules
    if rules is not None:
        await rules.refresh()
    try:
        answer = similar_items(engine.model, item_id, k or settings.api.default_k, rules)
    except UnknownItemError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except NoNeighbourIndexError as exc:
        raise HTTPException(status_code=503, detail="model has no neighbour index") from exc
    return json_response(
        {
            "item_id": answer.item_id,
            "items": [{"item_id": i.item_id, "score": i.score} for i in answer.items],
            "model_version": answer.model_version,
        }
    )
