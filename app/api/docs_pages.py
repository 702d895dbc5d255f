"""The ``/docs`` (Swagger UI) and ``/redoc`` pages with their scripts and styles served by the
API.

FastAPI's own pages load them from a CDN, so without internet access they stay blank. The
assets come from the ``fastapi-offline`` package (MIT), which ships the Swagger UI and ReDoc
bundles; FastAPI renders the pages around them. The assets are the viewers' code only, open
like any static file; the pages and the document they show are routes of the ``docs`` router,
behind its access group.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
_ASSETS_DIR = files("fastapi_offline") / "static"


def mount_docs_assets(app: FastAPI) -> None:
    """Serve the viewers' scripts, styles and icon under ``ASSETS_URL``."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(_ASSETS_DIR)), name="docs-assets")


def swagger_ui_page(request: Request, openapi_url: str) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        swagger_ui_parameters=request.app.swagger_ui_parameters,
    )


def redoc_page(request: Request, openapi_url: str) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}{openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
