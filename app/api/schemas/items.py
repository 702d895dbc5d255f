"""``/items/...``: related items, an item's details and its availability override."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.recommend import ItemOut


class SimilarItemsResponse(BaseModel):
    item_id: str = Field(description="The item the list is about.")
    items: list[ItemOut] = Field(
        description="Related items, best first, distinct, never the item itself; fewer than k "
        "when the item has fewer related items."
    )
    model_version: str = Field(description="Model version whose neighbour index answered.")


class CatalogueItemOut(BaseModel):
    item_id: str = Field(description="Item id as it appears in the catalogue.")
    title: str = Field(description="Display title (the id when the catalogue has none).")
    categories: list[str] = Field(description="Category or genres.")
    price: float | None = Field(description="Price, when the catalogue has one.")
    in_stock: bool = Field(description="Served stock flag (availability overrides applied).")
    hidden: bool = Field(description="Served hidden flag: a hidden item is never recommended.")
    image_url: str | None = Field(description="Image URL, when the catalogue has one.")


class AvailabilityBody(BaseModel):
    """Replaces the item's override; a field left out (or null) reverts to the catalogue."""

    model_config = ConfigDict(extra="forbid")

    hidden: bool | None = Field(None, description="true: never shown anywhere.")
    in_stock: bool | None = Field(None, description="false: left out where stock matters.")


class AvailabilityResponse(BaseModel):
    item_id: str = Field(description="The item.")
    hidden: bool = Field(description="Served value: the override, else the catalogue's.")
    in_stock: bool = Field(description="Served value: the override, else the catalogue's.")
    override: AvailabilityBody | None = Field(description="The stored override, if any.")
