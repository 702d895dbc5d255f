"""``/content-blocks``: the blocks of a page's slots."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BlockItemOut(BaseModel):
    item_id: str = Field(description="Item id as it appears in the catalogue.")
    title: str = Field(description="Display title (the id when the catalogue has none).")
    categories: list[str] = Field(description="Category or genres.")
    price: float | None = Field(description="Price, when the catalogue has one.")
    in_stock: bool = Field(description="Always true unless the slot allows out-of-stock items.")
    image_url: str | None = Field(description="Image URL, when the catalogue has one.")
    score: float = Field(description="Ranking score within the block; higher is better.")


class ContentBlockOut(BaseModel):
    slot: str = Field(description="Slot id.")
    title: str = Field(description="The slot's title template, filled in.")
    items: list[BlockItemOut] = Field(description="Items, best first, distinct.")
    source: str = Field(
        description="How the items were chosen: `personalized`, `cold_start`, `popular`, "
        "`similar_to_last_item` or `fallback_items`."
    )
    model_version: str = Field(description="Model version that produced the block.")
    recommendation_id: str = Field(
        description="Id of this exposure; send it back in feedback events' `context`."
    )
    experiment_id: str | None = Field(description="Experiment that made the block, if any.")
    variant: str | None = Field(description="Experiment variant, if any.")


class ContentBlockResponse(ContentBlockOut):
    user_id: str = Field(description="The user the block is for.")


class ContentBlocksResponse(BaseModel):
    user_id: str = Field(description="The user the blocks are for.")
    blocks: list[ContentBlockOut] = Field(
        description="One block per requested slot, in order; no item appears twice."
    )
