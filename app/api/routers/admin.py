"""``/admin``: operator actions. Needs an API key with the ``admin`` scope."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import EngineDep, ReloaderDep
from app.api.errors import error_body
from app.api.responses import json_response
from app.api.schemas.admin import ModelRefusedResponse, ModelReloadResponse
from app.api.strict_json import StrictJsonRoute
from app.serving.recommend.model_reload import ModelRefused

router = APIRouter(prefix="/admin", tags=["admin"], route_class=StrictJsonRoute)


@router.post(
    "/models/reload",
    response_model=ModelReloadResponse,
    summary="Serve the published model now",
    description=(
        "Loads the version `MODELS_DIR/CURRENT` names, checks it (files match the manifest, "
        "the graph runs, reproduces the reference scores recorded at export, has the served "
        "graph's signature and reads no feature the service does not fetch) and only then "
        "serves it. Each worker process also polls `CURRENT` on its own; this call acts on the "
        "worker that answers it. 409 when the model is refused: the previous one keeps serving."
    ),
    responses={409: {"model": ModelRefusedResponse, "description": "Model refused."}},
)
async def reload_model(reloader: ReloaderDep, engine: EngineDep) -> Response:
    try:
        result = await reloader.reload()
    except ModelRefused as exc:
        return json_response(
            {
                **error_body(409, exc.refusal.reason),
                "refused_version": exc.refusal.version,
                "serving_version": engine.model.version,
            },
            status_code=409,
        )
    return json_response(
        {
            "outcome": result.outcome,
            "version": result.version,
            "previous_version": result.previous_version,
        }
    )
