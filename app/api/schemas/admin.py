"""``/admin``: the model reload's answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.api.errors import ErrorResponse


class ModelReloadResponse(BaseModel):
    outcome: Literal["loaded", "unchanged"] = Field(
        description="`loaded`: the published version now serves; `unchanged`: it already did."
    )
    version: str = Field(description="The version now serving.")
    previous_version: str = Field(description="The version that served before the call.")


class ModelRefusedResponse(ErrorResponse):
    """The error shape (``message`` says why the version was refused), plus the versions."""

    refused_version: str | None = Field(description="The refused version (null: none published).")
    serving_version: str = Field(description="The version that keeps serving.")
