"""``/recommend``: its query, body and answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.list_options import ListOptions
from app.serving.types import FallbackReason, Source

USER_ID_FIELD = Field(
    min_length=1, max_length=256, description="The user to recommend for (any string id)."
)
_TARGETING = "Experiment targeting: the client's {}; optional."


_PROFILE_REASONS = (
    "The user's own history items and attributes (`features`, `because_you_viewed`) are given "
    "only to an `admin` key or with the user's token in `X-User-Token` (signed by the shop's "
    "backend); other callers get item-level reasons (`sources`, `proposed_by`)."
)


class RecommendQuery(ListOptions):
    """``GET /recommend``'s query parameters: FastAPI documents and validates them from this
    model. An unknown parameter is an error naming it, as an unknown body field is for
    ``POST``."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = USER_ID_FIELD
    k: int | None = Field(None, ge=1, le=100, description="How many items (1..100).")
    exclude: list[str] | None = Field(
        None, max_length=1000, description="Item ids never to return."
    )
    device: str | None = Field(None, max_length=64, description=_TARGETING.format("device"))
    segment: str | None = Field(None, max_length=64, description=_TARGETING.format("segment"))
    explain: bool = Field(
        False,
        description="Attach to each item why it was recommended (`items[].explanation`); "
        "computed afresh, never read from or written to the cache. " + _PROFILE_REASONS,
    )
    repeat: bool = Field(
        False,
        description="Repeat mode, for consumables: items the user bought before may be "
        "returned, ranked by the repeat model (personal frequency and recency, item "
        "repurchase cycles) and blended with unseen recommendations; each item then says "
        "whether it is a `repeat`. `exclude` still wins. Default: items the user already "
        "interacted with are never returned.",
    )


class RecommendBody(ListOptions):
    """``POST /recommend``: the query parameters of ``GET`` plus context and exclusions."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = USER_ID_FIELD
    k: int | None = Field(None, ge=1, le=100, description="How many items (default 10).")
    exclude: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Item ids never to return, on top of the user's own history.",
    )
    context: dict[str, Any] | None = Field(
        None,
        description="Free-form request context (page, device, ...). String `device` and "
        "`segment` entries are used for experiment targeting.",
    )
    explain: bool = Field(
        False,
        description="Attach to each item why it was recommended (`items[].explanation`). Slower: "
        "the answer is computed afresh, never read from or written to the cache. "
        + _PROFILE_REASONS,
    )
    repeat: bool = Field(
        False,
        description="Repeat mode, for consumables: items the user bought before may be "
        "returned, ranked by the repeat model (personal frequency and recency, item "
        "repurchase cycles) and blended with unseen recommendations; each item then says "
        "whether it is a `repeat`. `exclude` still wins. Default: items the user already "
        "interacted with are never returned.",
    )


class ItemOut(BaseModel):
    item_id: str = Field(description="Item id as it appears in the catalogue.")
    score: float = Field(description="Ranking score; higher is better; comparable within a list.")


class SourceContributionOut(BaseModel):
    source: str = Field(
        description="A term of the hybrid model: `item_similarity` (EASE collaborative + content "
        "similarity to the history, with the next items regressed on it when both weigh the "
        "history alike), `next_items` (that regression when it weighs the history its own way; "
        "0 otherwise), `transitions` (what follows the newest history items), `demographic` "
        "(attribute tokens) or `popularity`."
    )
    contribution: float = Field(description="This term's part of `model_score`.")
    rank: int = Field(
        description="The item's rank by this term alone among the items the user could be "
        "shown (history and `exclude` removed); 1 is best."
    )


class FeatureContributionOut(BaseModel):
    feature: str = Field(
        description="The online feature read: `history_items` or `attribute_tokens`."
    )
    value: str = Field(description="The history item id or attribute token that contributed.")
    source: str = Field(description="The term it contributed through.")
    contribution: float = Field(description="Its part of `model_score` (may be negative).")


class RelatedHistoryItemOut(BaseModel):
    item_id: str = Field(description="An item from the user's history.")
    contribution: float = Field(
        description="How much its similarity and transition rows added to `model_score`."
    )
    neighbour_rank: int | None = Field(
        description="Where the recommended item ranks in this item's "
        "`GET /items/{id}/similar` list; null when beyond the precomputed neighbours."
    )


class ExplanationOut(BaseModel):
    model_score: float | None = Field(
        description="What the model scores the item: the sum of `sources[].contribution`. Equals "
        "`score` unless a variant's strategy re-ranked the list; null when the popularity list "
        "answered."
    )
    proposed_by: list[str] = Field(
        description="Candidate sources that alone would rank the item in the top k: terms with a "
        "positive contribution and `rank <= k`, or `popular_list` (the popularity list answered)."
    )
    sources: list[SourceContributionOut] = Field(description="Every term's contribution.")
    features: list[FeatureContributionOut] = Field(
        description="The history items and attribute tokens with the largest contributions "
        "(either sign), up to 5; empty unless the caller may read the user's profile."
    )
    because_you_viewed: list[RelatedHistoryItemOut] = Field(
        description="Up to 3 history items that raised the item's score most (positive only); "
        "empty unless the caller may read the user's profile."
    )


class RecommendedItemOut(ItemOut):
    repeat: bool | None = Field(
        None,
        description="With `repeat=true`: whether the user bought this item before (a rebuy "
        "ranked by the repeat model); absent otherwise.",
    )
    title: str | None = Field(None, description="Display title; only with `fields=title`.")
    categories: list[str] | None = Field(
        None, description="Category or genres; only with `fields=categories`."
    )
    price: float | None = Field(None, description="Price; only with `fields=price`.")
    image_url: str | None = Field(None, description="Image URL; only with `fields=image_url`.")
    in_stock: bool | None = Field(
        None, description="Served stock flag; only with `fields=in_stock`."
    )
    explanation: ExplanationOut | None = Field(
        None,
        description="Why the item was chosen; only with `explain=true` (null for an item the "
        "model does not know).",
    )


class RecommendResponse(BaseModel):
    user_id: str = Field(description="The user the list is for.")
    items: list[RecommendedItemOut] = Field(description="Recommended items, best first, distinct.")
    source: Source = Field(
        description="How the list was made: `personalized` (history), `cold_start` (known "
        "attributes, no history) or `popular` (unknown user or a fallback)."
    )
    cache: Literal["local", "redis"] | None = Field(
        None, description="The cache tier that answered, or null when computed now."
    )
    fallback_reason: FallbackReason | None = Field(
        None, description="Why the popularity fallback answered, when it did."
    )
    model_version: str = Field(description="Model version that produced the list.")
    request_id: str = Field(
        description="This request's id, also the X-Request-ID header of every answer: the "
        "client's X-Request-ID when it is 1-128 characters of A-Z a-z 0-9 . _ : -, else 32 hex "
        "digits."
    )
    recommendation_id: str = Field(
        description="Id of this list (X-Recommendation-ID header; 32 hex digits). Send it "
        "back as `context.recommendation_id` on impression, click, add_to_cart and purchase "
        "events so they are attributed to the experiment variant and position."
    )
    experiment_id: str | None = Field(
        description="The experiment this user is in (X-Experiment-ID header); null: default."
    )
    variant: str | None = Field(
        description="The user's variant in that experiment (X-Variant header); null: default."
    )
    explanation_unavailable: str | None = Field(
        None,
        description="With `explain=true`, why the items carry no explanation (for example a "
        "model exported before explanations, or a failing feature store); absent otherwise.",
    )
