"""What a caller may ask of a recommendation list beyond user and k, the same on GET and POST:
filters narrowing it (category, price range, stock) and catalogue fields to show with each
item, so a frontend renders the list without a second lookup."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from app.serving.catalogue.rule_config import ItemFilter, check_price_bounds

DisplayField = Literal["title", "categories", "price", "image_url", "in_stock"]
DISPLAY_FIELDS: tuple[DisplayField, ...] = ("title", "categories", "price", "image_url", "in_stock")


class ListOptions(BaseModel):
    category: list[str] | None = Field(
        None,
        min_length=1,
        max_length=50,
        description="Only items in one of these categories (repeat the parameter for several).",
    )
    price_min: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Only items priced at least this."
    )
    price_max: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Only items priced at most this."
    )
    in_stock: bool | None = Field(
        None,
        description="true: only items in stock (the default unless the business rules say "
        "otherwise); false: out-of-stock items may be shown too. Hidden items never are.",
    )
    fields: list[DisplayField] | None = Field(
        None,
        max_length=len(DISPLAY_FIELDS),
        description="Catalogue fields to add to each item: "
        + ", ".join(DISPLAY_FIELDS)
        + " (comma-separated or repeated).",
    )

    @field_validator("fields", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        """``fields=title,price`` as well as ``fields=title&fields=price``."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [part.strip() for v in value for part in v.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _prices_ordered(self) -> ListOptions:
        check_price_bounds(self.price_min, self.price_max)
        return self

    def item_filter(self) -> ItemFilter | None:
        """The filters as the engine applies them, or None when none is asked for."""
        asked = (self.category, self.price_min, self.price_max, self.in_stock)
        if all(value is None for value in asked):
            return None
        return ItemFilter(
            categories=self.category,
            price_min=self.price_min,
            price_max=self.price_max,
            exclude_out_of_stock=self.in_stock,
        )
