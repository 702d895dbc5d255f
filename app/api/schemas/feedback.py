"""Wire models of ``POST /feedback``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from app.feedback.types import FeedbackKind, FeedbackTarget

_TARGET_FIELDS = ("item_id", "category", "recommendation_id")
# Which target fields each kind takes, and whether it takes a rating: the route's rules, stated
# in the schema too so clients and generators know a body's valid shapes.
_SHAPES = {
    "not_interested": (("item_id", "category"), False),
    "rating": (("item_id", "recommendation_id"), True),
}


def _given(name: str) -> JsonDict:
    """Matches a body in which ``name`` holds a value (null counts as absent)."""
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def _shape(kind: str, target: str, rated: bool) -> JsonDict:
    absent = [field for field in _TARGET_FIELDS if field != target]
    return {
        "properties": {"kind": {"const": kind}},
        "allOf": [_given(target), *([_given("rating")] if rated else [])],
        "not": {"anyOf": [_given(field) for field in (*absent, *([] if rated else ["rating"]))]},
    }


class FeedbackIn(BaseModel):
    """One statement of a user: give exactly one target."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "oneOf": [
                _shape(kind, target, rated)
                for kind, (targets, rated) in _SHAPES.items()
                for target in targets
            ]
        },
    )

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
    rating: int | None = Field(None, ge=1, le=5, description="1 (useless) .. 5 (spot on).")


class FeedbackOut(BaseModel):
    user_id: str
    kind: FeedbackKind
    target: FeedbackTarget = Field(description="What the feedback is about: item, category, list.")
    at: float = Field(description="When it was stored, Unix seconds.")
