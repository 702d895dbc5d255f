"""``/items/{item_id}/availability``: hide an item or mark it out of stock, without a rebuild."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response

from app.api.deps import EngineDep
from app.api.responses import json_response
from app.api.schemas.items import AvailabilityBody, AvailabilityResponse
from app.api.strict_json import StrictJsonRoute
from app.serving.catalogue.availability import AvailabilityStoreError
from app.serving.catalogue.items import Availability
from app.serving.catalogue.rules import ItemRules, ItemState

router = APIRouter(prefix="/items", tags=["catalogue"], route_class=StrictJsonRoute)

ItemIdPath = Annotated[str, Path(min_length=1, max_length=256, description="The item id.")]


@router.get(
    "/{item_id:path}/availability",
    response_model=AvailabilityResponse,
    summary="An item's availability as served",
    responses={404: {"description": "Unknown item."}},
)
async def get_availability(engine: EngineDep, item_id: ItemIdPath) -> Response:
    rules = _known(engine.rules, item_id)
    await rules.refresh()
    return _respond(item_id, rules.state(item_id))


@router.put(
    "/{item_id:path}/availability",
    response_model=AvailabilityResponse,
    summary="Override an item's availability (admin)",
    description="Stored durably (SQLite under the home, or Redis) and applied by this worker at "
    "once, by every other worker within `RECSERVE_AVAILABILITY__REFRESH_SECONDS`, to every "
    "list returned: hidden items never appear, out-of-stock items only where a slot allows "
    "them. Cached lists made before the change are not served again. 503 when the store "
    "is down (nothing changed).",
    responses={404: {"description": "Unknown item."}, 503: {"description": "Store down."}},
)
async def put_availability(
    engine: EngineDep, item_id: ItemIdPath, body: AvailabilityBody
) -> Response:
    rules = _known(engine.rules, item_id)
    try:
        state = await rules.set_availability(item_id, Availability(body.hidden, body.in_stock))
    except AvailabilityStoreError as exc:
        raise HTTPException(503, f"availability not stored: {exc}") from exc
    return _respond(item_id, state)


def _known(rules: ItemRules | None, item_id: str) -> ItemRules:
    if rules is None or item_id not in rules.catalogue.index:
        raise HTTPException(404, f"unknown item {item_id!r}: not in the catalogue")
    return rules


def _respond(item_id: str, state: ItemState) -> Response:
    override = state.override
    return json_response(
        {
            "item_id": item_id,
            "hidden": state.hidden,
            "in_stock": state.in_stock,
            "override": None
            if override is None
            else {"hidden": override.hidden, "in_stock": override.in_stock},
        }
    )
