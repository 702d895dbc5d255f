"""Internal records of the request path (the wire format lives in ``app/api/schemas/``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from app.serving.catalogue.rule_config import ItemFilter


class Source(StrEnum):
    """How an answer was made."""

    PERSONALIZED = "personalized"  # model scored the user's history (and attributes)
    COLD_START = "cold_start"  # model scored known attributes; the user has no history
    POPULAR = "popular"  # popularity fallback: unknown user or a failing dependency


class FallbackReason(StrEnum):
    UNKNOWN_USER = "unknown_user"
    NO_USABLE_FEATURES = "no_usable_features"
    FEATURE_STORE_ERROR = "feature_store_error"
    MODEL_ERROR = "model_error"
    NO_CONSENT = "no_consent"  # the user withheld personalisation: no profile is read
    CONSENT_UNAVAILABLE = "consent_unavailable"  # consent unknown: treated as withheld


@dataclass(frozen=True, slots=True)
class RecommendRequest:
    user_id: str
    k: int
    exclude: tuple[str, ...] = ()
    use_cache: bool = True
    # Names the strategy that makes the list (experiment/variant) when it is not the default,
    # so answers of different strategies never share a cache entry.
    cache_scope: str = ""
    # Narrows the list beyond the business rules (a content slot's categories, prices...).
    filters: ItemFilter | None = None
    # Repeat mode: items the user bought before may come back, ranked by the repeat model.
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class ScoredItem:
    item_id: str
    score: float


@dataclass(frozen=True, slots=True)
class Recommendation:
    user_id: str
    items: tuple[ScoredItem, ...]
    source: Source
    model_version: str
    cache_tier: str | None = None  # "local" or "redis" when served from a cache tier
    fallback_reason: FallbackReason | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    repeats: frozenset[str] = frozenset()  # ids of ``items`` the user bought before
    segment: str | None = None  # the user's RFM segment when their features were read
