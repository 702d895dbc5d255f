"""Wire models of ``POST /feedback``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from app.feedback.types import FeedbackKind, FeedbackTarget


class FeedbackIn(BaseModel):
    """One statement of a user: give exactly one target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(min_length=1, max_length=256, description="Who gives the feedback.")
    kind: FeedbackKind = Field(
        description="`not_interested` (with `item_id` or `category`): those items leave the "
        "user's lists at once. `rating` (with `rating`, and `item_id` or `recommendation_id`): "
        "how relevant an item or a served list was."
    )
    item_id: str | None = Field(None, min_length=1, max_length=256, description="An item.")
    category: str | None = Field(
        None, min_length=1, max_length=256, description="A catalogue category (not_interested)."
    )
    recommendation_id: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="A served list, by the `recommendation_id` its answer carried (rating).",
    )
    rating: StrictInt | None = Field(None, ge=1, le=5, description="1 (useless) .. 5 (spot on).")


class FeedbackOut(BaseModel):
    user_id: str
    kind: FeedbackKind
    target: FeedbackTarget = Field(description="What the feedback is about: item, category, list.")
    at: float = Field(description="When it was stored, Unix seconds.")
