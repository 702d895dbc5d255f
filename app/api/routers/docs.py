"""The OpenAPI document and its two viewers, behind the ``docs`` access group.

FastAPI serves them on routes of its own that no dependency guards, so the app turns those
off and these take their place: closed (admin key) when keys are required, unless
``RECSERVE_AUTH__OPEN_DOCS``. The viewers' scripts and styles are served locally
(``app.api.docs_pages``). The viewers fetch ``/openapi.json`` from the browser without a key,
so with docs closed read the document with a key (``curl -H "X-API-Key: ..."``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.api.docs_pages import redoc_page, swagger_ui_page
from app.api.responses import json_response

OPENAPI_URL = "/openapi.json"

router = APIRouter(include_in_schema=False)


@router.get(OPENAPI_URL)
async def openapi_document(request: Request) -> Response:
    return json_response(request.app.openapi())


@router.get("/docs")
async def swagger_ui(request: Request) -> Response:
    return swagger_ui_page(request, OPENAPI_URL)


@router.get("/redoc")
async def redoc(request: Request) -> Response:
    return redoc_page(request, OPENAPI_URL)
