"""``GET /items/{item_id}``: one catalogue item as a page shows it.

Included after every other ``/items/...`` router: its path would otherwise swallow
``/items/{id}/similar`` and ``/items/{id}/availability``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response

from app.api.deps import EngineDep
from app.api.responses import json_response
from app.api.schemas.items import CatalogueItemOut

router = APIRouter(prefix="/items", tags=["items"])


@router.get(
    "/{item_id:path}",
    response_model=CatalogueItemOut,
    summary="An item's display attributes",
    description="Title, categories, price, image URL and the served stock and hidden flags "
    "(availability overrides applied). 404 for an item the catalogue does not hold.",
    responses={404: {"description": "Unknown item."}},
)
async def item_details(
    engine: EngineDep,
    item_id: Annotated[str, Path(min_length=1, max_length=256, description="The item id.")],
) -> Response:
    rules = engine.rules
    if rules is None or item_id not in rules.catalogue.index:
        raise HTTPException(404, f"unknown item {item_id!r}: not in the catalogue")
    await rules.refresh()
    return json_response(rules.display(item_id).model_dump())
