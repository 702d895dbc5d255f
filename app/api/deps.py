"""Annotated dependency aliases so handler signatures read as plain types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.api.state import Services


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a sync dependency in a worker thread, which cost more
    # than the whole feature read on every request.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
