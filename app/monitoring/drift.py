"""Drift of live traffic from the training snapshot, measured per feature as a population
stability index (PSI).

``PSI = Σ_bins (live - ref) · ln(live / ref)`` over the share of observations in each bin (a
share of 0 is floored at ``PSI_FLOOR``, so a bin empty on one side counts but never divides by
zero). Under no drift and ``n`` live observations over ``b`` bins its expectation is about
``(b - 1) / n``: about 0.005 for 10 bins and 2,000 events, far below the usual thresholds of
0.1 (watch) and 0.25 (act, the alert's).

The same functions bin the reference (``recserve build``, over the last ``window`` interactions
of the training data) and live traffic (the drift job, over the last ``window`` events of the
event log and the sampled answers), so both sides are measured alike:

* ``user_activity``: events per user inside the window (1, 2, 3-4, 5-8, 9-16, 17-32, 33+).
* ``item_popularity``: the items' popularity band at training (top 1%, 1-5%, 5-20%, the rest,
  and items the model does not know).
* ``unknown_items``: events naming an item the model does not know (at training: an item with
  no interaction before the window).
* ``item_category``: the items' first category (the reference's most common ones, ``other``,
  ``none``): the attribute mix of what users interact with.
* ``score``: the top score of sampled model answers, in the reference's decile bins.
* ``unknown_users``: sampled answers to users the model does not know (at training: window
  events of users with no earlier interaction).
* ``fallback``: sampled answers made by the popularity fallback, whatever the reason (at
  training: as ``unknown_users``, the only fallback a healthy service makes).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

PSI_FLOOR = 1e-4
DEFAULT_WINDOW = 5_000
ACTIVITY_EDGES = (1, 2, 3, 5, 9, 17, 33)  # lower bounds of the events-per-user bins
POPULARITY_BANDS = (0.01, 0.05, 0.20)  # upper rank fractions of the named bands
POPULARITY_LABELS = ("top_1pct", "top_5pct", "top_20pct", "rest", "unknown")
TOP_CATEGORIES = 10
SCORE_BINS = 10
OTHER, NONE = "other", "none"

EVENT_FEATURES = ("user_activity", "item_popularity", "unknown_items", "item_category")
ANSWER_FEATURES = ("score", "unknown_users", "fallback")
FEATURES = EVENT_FEATURES + ANSWER_FEATURES


class Histogram(BaseModel):
    """Shares of observations per bin (they sum to 1), with the bins' labels."""

    labels: list[str]
    shares: list[float]
    observations: int = Field(description="How many observations the shares come from.")


class DriftReference(BaseModel):
    """The training snapshot's distributions, written by the build beside the model."""

    window: int = Field(description="Interactions (events) per window, both sides.")
    popular_items: list[list[str]] = Field(
        description="Item ids of each named popularity band (top 1%, 1-5%, 5-20%)."
    )
    categories: list[str] = Field(description="The categories binned by name, most common first.")
    score_edges: list[float] = Field(
        default_factory=list,
        description="Inner edges of the score deciles; empty when no scores were sampled.",
    )
    histograms: dict[str, Histogram]


@dataclass(frozen=True, slots=True)
class WindowEvent:
    user_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class SampledAnswer:
    """What the drift job keeps of one answer: no user id, just how it was made."""

    top_score: float | None  # None: an empty list
    fallback: bool
    unknown_user: bool


def psi(reference: Sequence[float], live: Sequence[float]) -> float:
    """The population stability index of two share vectors over the same bins."""
    if len(reference) != len(live):
        raise ValueError(f"{len(reference)} reference bins but {len(live)} live bins")
    total = 0.0
    for ref, now in zip(reference, live, strict=True):
        ref, now = max(ref, PSI_FLOOR), max(now, PSI_FLOOR)
        total += (now - ref) * math.log(now / ref)
    return total


def histogram(labels: Sequence[str], observed: Iterable[str]) -> Histogram:
    """Shares of ``observed`` per label (every observation must name one of ``labels``)."""
    counts = Counter(observed)
    n = sum(counts.values())
    shares = [counts[label] / n if n else 0.0 for label in labels]
    return Histogram(labels=list(labels), shares=shares, observations=n)


def activity_label(events: int) -> str:
    lower = max(edge for edge in ACTIVITY_EDGES if edge <= events)
    upper = next((edge for edge in ACTIVITY_EDGES if edge > events), None)
    if upper is None:
        return f"{lower}+"
    return str(lower) if upper == lower + 1 else f"{lower}-{upper - 1}"


ACTIVITY_LABELS = tuple(activity_label(edge) for edge in ACTIVITY_EDGES)


def popularity_bands(items_best_first: Sequence[str]) -> list[list[str]]:
    """The named bands' item ids of a popularity ranking (``DriftReference.popular_items``)."""
    n = len(items_best_first)
    cuts = [0, *(max(1, math.ceil(n * band)) for band in POPULARITY_BANDS)]
    return [list(items_best_first[a:b]) for a, b in itertools.pairwise(cuts)]


def score_edges(scores: Sequence[float], bins: int = SCORE_BINS) -> list[float]:
    """The inner edges splitting ``scores`` into ``bins`` equally filled bins (deciles)."""
    ordered = sorted(scores)
    if not ordered:
        return []
    return [ordered[min(len(ordered) - 1, len(ordered) * i // bins)] for i in range(1, bins)]


def score_label(edges: Sequence[float], score: float) -> str:
    return f"q{sum(score >= edge for edge in edges) + 1}"


class Binner:
    """Turns windows of events and samples of answers into the features' histograms, with the
    bins the reference fixed."""

    def __init__(
        self,
        popular_items: Sequence[Sequence[str]],
        categories: Sequence[str],
        edges: Sequence[float],
        category_of: Callable[[str], str | None],
    ) -> None:
        self._band_of = {item: band for band, ids in enumerate(popular_items) for item in ids}
        self._categories = frozenset(categories)
        self.category_labels = (*categories, OTHER, NONE)
        self._edges = tuple(edges)
        self._category_of = category_of

    @classmethod
    def of(cls, reference: DriftReference, category_of: Callable[[str], str | None]) -> Binner:
        return cls(
            reference.popular_items, reference.categories, reference.score_edges, category_of
        )

    def event_histograms(
        self, events: Sequence[WindowEvent], known_item: Callable[[str], bool]
    ) -> dict[str, Histogram]:
        """``user_activity``, ``item_popularity``, ``unknown_items`` and ``item_category``."""
        per_user = Counter(event.user_id for event in events)
        known = [known_item(event.item_id) for event in events]
        return {
            "user_activity": histogram(
                ACTIVITY_LABELS, (activity_label(n) for n in per_user.values())
            ),
            "item_popularity": histogram(
                POPULARITY_LABELS,
                (
                    self._popularity_label(event.item_id, is_known)
                    for event, is_known in zip(events, known, strict=True)
                ),
            ),
            "unknown_items": _share_histogram(known),
            "item_category": histogram(
                self.category_labels, (self._category_label(event.item_id) for event in events)
            ),
        }

    def answer_histograms(self, answers: Sequence[SampledAnswer]) -> dict[str, Histogram]:
        """``score`` (answers with a score, when the reference has deciles), ``unknown_users``
        and ``fallback``."""
        result = {
            "unknown_users": _share_histogram([not a.unknown_user for a in answers]),
            "fallback": _share_histogram([not a.fallback for a in answers]),
        }
        if self._edges:
            labels = [f"q{i}" for i in range(1, len(self._edges) + 2)]
            scored = (
                score_label(self._edges, a.top_score)
                for a in answers
                if a.top_score is not None and not a.fallback
            )
            result["score"] = histogram(labels, scored)
        return result

    def _popularity_label(self, item_id: str, known: bool) -> str:
        if not known:
            return POPULARITY_LABELS[-1]
        return POPULARITY_LABELS[self._band_of.get(item_id, len(POPULARITY_BANDS))]

    def _category_label(self, item_id: str) -> str:
        category = self._category_of(item_id)
        if category is None:
            return NONE
        return category if category in self._categories else OTHER


def _share_histogram(known: Sequence[bool]) -> Histogram:
    """Two bins, ``known`` and ``unknown``, from a known flag per observation."""
    return histogram(("known", "unknown"), ("known" if flag else "unknown" for flag in known))


def top_categories(categories: Iterable[str | None], count: int = TOP_CATEGORIES) -> list[str]:
    """The ``count`` most common categories, most common first (ties by name)."""
    counts = Counter(c for c in categories if c is not None)
    return [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:count]]


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    feature: str
    psi: float | None  # None: too few live observations to say
    reference: Histogram
    live: Histogram


def compare(
    reference: Mapping[str, Histogram],
    live: Mapping[str, Histogram],
    *,
    min_events: int,
    min_answers: int,
    full_window: bool,
) -> list[FeatureDrift]:
    """PSI of every feature both sides have; ``psi`` None where the live side has fewer than
    ``min_events`` (event features) or ``min_answers`` (answer features) observations, and for
    ``user_activity`` until the live window is as long as the reference's (``full_window``):
    events per user grow with the window, so a shorter one reads as drift."""
    found = []
    for feature in FEATURES:
        if feature not in reference or feature not in live:
            continue
        ref, now = reference[feature], live[feature]
        needed = min_events if feature in EVENT_FEATURES else min_answers
        enough = full_window if feature == "user_activity" else now.observations >= needed
        value = psi(ref.shares, now.shares) if enough and ref.labels == now.labels else None
        found.append(FeatureDrift(feature, value, ref, now))
    return found
