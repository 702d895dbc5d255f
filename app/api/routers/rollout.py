"""The guarded rollout for operators: ``/admin/rollout`` (JSON) and ``/ui/rollout`` (console).

Both read the rollout record store and the model pointers; nothing here changes state (the
job decides; ``recserve rollout promote|rollback`` overrides it).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from app.api.deps import SettingsDep, services_of
from app.api.routers.ui import page
from app.api.schemas.rollout import RolloutStatusResponse
from app.api.strict_json import StrictJsonRoute
from app.artifacts import PublicationError, challenger_version, current_version
from app.rollout.records import ModelChange
from app.rollout.store import RolloutStore, RolloutStoreUnavailable
from app.settings import Settings

LISTED = 20

router = APIRouter(prefix="/admin/rollout", tags=["admin"], route_class=StrictJsonRoute)
console = APIRouter(prefix="/ui/rollout", tags=["operator console"], include_in_schema=False)


async def get_rollout_store(request: Request) -> RolloutStore:
    return services_of(request).rollout_store


RolloutStoreDep = Annotated[RolloutStore, Depends(get_rollout_store)]


@router.get(
    "",
    response_model=RolloutStatusResponse,
    summary="Rollout status",
    description="The champion and challenger, the latest rollouts with the sequential test's "
    "latest look and decision, and the latest model changes with their before/after reports.",
    responses={503: {"description": "The rollout record store is unavailable."}},
)
async def rollout_status(settings: SettingsDep, store: RolloutStoreDep) -> dict[str, Any]:
    return await _status(settings, store)


@router.get(
    "/changes/{change_id}",
    response_model=ModelChange,
    summary="A model change and its before/after report",
    description="The change (promotion, rollback or publish) and, once the window after it "
    "has ended, its report: CTR and conversion before and after with 95% intervals, both "
    "periods reweighted to the same segment mix. `report` is null until then.",
    responses={
        404: {"description": "No model change with this id."},
        503: {"description": "The rollout record store is unavailable."},
    },
)
async def model_change(change_id: str, store: RolloutStoreDep) -> ModelChange:
    return await _change(store, change_id)


@console.get("", response_class=HTMLResponse, summary="Console: guarded rollout")
async def rollout_page(settings: SettingsDep, store: RolloutStoreDep) -> HTMLResponse:
    status = await _status(settings, store)
    return page("rollout.html", "Guarded rollout", "/ui/rollout", when=_when, **status)


@console.get(
    "/changes/{change_id}", response_class=HTMLResponse, summary="Console: before/after report"
)
async def change_page(change_id: str, store: RolloutStoreDep) -> HTMLResponse:
    change = await _change(store, change_id)
    title = f"Model change {change.change_id}"
    return page("model_change.html", title, "/ui/rollout", change=change, when=_when)


async def _status(settings: Settings, store: RolloutStore) -> dict[str, Any]:
    root = settings.model_root
    try:
        champion, challenger = current_version(root), challenger_version(root)
    except (OSError, PublicationError) as exc:
        raise HTTPException(status_code=503, detail=f"model pointers unreadable: {exc}") from exc
    try:
        rollouts = await asyncio.to_thread(store.rollouts, LISTED)
        changes = await asyncio.to_thread(store.changes, LISTED)
    except RolloutStoreUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    return {
        "champion": champion,
        "challenger": challenger,
        "settings": settings.rollout,
        "rollouts": rollouts,
        "changes": changes,
    }


async def _change(store: RolloutStore, change_id: str) -> ModelChange:
    try:
        change = await asyncio.to_thread(store.change, change_id)
    except RolloutStoreUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    if change is None:
        raise HTTPException(status_code=404, detail="no model change with this id")
    return change


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "—"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
