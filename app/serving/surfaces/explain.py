"""Why each item of an answer was recommended, read off what the model computed.

The hybrid's score is a sum of terms (``app.artifacts.EXPLAIN_TERM_OUTPUTS`` plus popularity),
each a weighted sum over input slots: the user's history items or attribute tokens. Splitting
an item's score along those sums gives, exactly:

* ``sources``: each term's contribution, and the item's rank by that term alone among the
  items the user could be shown; ``proposed_by`` names the terms that alone would put the item
  in the top k (the candidate sources that proposed it);
* ``features``: the history items and attribute tokens that contributed most, with values;
* ``because_you_viewed``: the history items whose rows in the history terms (similarity with
  the next-items regression, transitions) gave the item most of its score, with where the
  item ranks among their similar items (the neighbour index behind
  ``GET /items/{id}/similar``).

``features`` and ``because_you_viewed`` are the user's own history and attributes: callers not
entitled to the user's profile get ``item_level_only`` (sources and contributions).

Only computed when a request asks: a second run of the graph fetching its explain outputs
(``LoadedModel.score_breakdown``) and a second feature read, never on the normal path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from app.features.client import FeatureClient, FeatureStoreError
from app.features.schema import UserFeatures
from app.serving.model.ranking import LoadedModel, NotExplainableError, ScoreBreakdown
from app.serving.types import Recommendation, RecommendRequest, ScoredItem, Source

POPULARITY = "popularity"
POPULAR_LIST = "popular_list"
# The Feast feature each term reads its slots from.
TERM_FEATURES = {
    "item_similarity": "history_items",
    "transitions": "history_items",
    "next_items": "history_items",
    "demographic": "attribute_tokens",
}
HISTORY_TERMS = tuple(name for name, feature in TERM_FEATURES.items() if feature == "history_items")
TOP_FEATURES = 5
TOP_HISTORY_ITEMS = 3


@dataclass(frozen=True, slots=True)
class SourceContribution:
    source: str
    contribution: float
    rank: int  # among the items the user could be shown, by this term alone; 1 = best


@dataclass(frozen=True, slots=True)
class FeatureContribution:
    feature: str
    value: str
    source: str
    contribution: float


@dataclass(frozen=True, slots=True)
class RelatedHistoryItem:
    item_id: str
    contribution: float
    neighbour_rank: int | None  # the item's rank among this one's similar items, if listed


@dataclass(frozen=True, slots=True)
class ItemExplanation:
    item_id: str
    model_score: float | None  # the sum of ``sources``; None for the popularity fallback
    proposed_by: tuple[str, ...]
    sources: tuple[SourceContribution, ...] = ()
    features: tuple[FeatureContribution, ...] = ()
    because_you_viewed: tuple[RelatedHistoryItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Explanations:
    """Per item of the answer, in its order; ``unavailable`` says why when there are none."""

    items: tuple[ItemExplanation, ...] = ()
    unavailable: str | None = None


def item_level_only(explained: Explanations) -> Explanations:
    """``explained`` without the user's history items and attribute tokens."""
    return replace(
        explained,
        items=tuple(replace(e, features=(), because_you_viewed=()) for e in explained.items),
    )


def explain_recommendation(
    model: LoadedModel,
    features: FeatureClient,
    request: RecommendRequest,
    answer: Recommendation,
) -> Explanations:
    """Explain ``answer``, made for ``request`` by ``model``. Never raises for a dependency:
    a failure becomes ``unavailable`` with the reason."""
    if answer.source is Source.POPULAR:
        return Explanations(
            tuple(ItemExplanation(i.item_id, None, (POPULAR_LIST,)) for i in answer.items)
        )
    if answer.model_version != model.version:
        return Explanations(unavailable=f"model {answer.model_version} is no longer loaded")
    try:
        user = features.get_user(request.user_id)
    except FeatureStoreError as exc:
        return Explanations(unavailable=f"feature store failed: {exc}")
    if user is None:
        return Explanations(unavailable="the user's features are gone")
    try:
        return Explanations(explain_items(model, user, request, answer.items))
    except NotExplainableError as exc:
        return Explanations(unavailable=str(exc))


def explain_items(
    model: LoadedModel,
    user: UserFeatures,
    request: RecommendRequest,
    items: Sequence[ScoredItem],
) -> tuple[ItemExplanation, ...]:
    """The explanation of each of ``items`` the model knows, in order, for ``user``, scored as
    the engine scores them."""
    history = model.item_indices(user.history_items)
    tokens = [t for t in user.attribute_tokens if t in model.token_index]
    breakdown = model.score_breakdown(history, tokens)
    columns = model.item_indices([i.item_id for i in items])
    contributions = _contributions(breakdown, columns)
    eligible = np.ones(model.n_items, dtype=bool)
    eligible[np.concatenate((history, model.item_indices(request.exclude)))] = False
    ranks = {
        name: _ranks(totals, eligible, columns) for name, totals in _term_totals(breakdown).items()
    }
    token_ids = {i: t for t, i in model.token_index.items()}
    item_totals = {name: per_slot.sum(axis=0) for name, per_slot in contributions.items()}
    features = _top_features(model, breakdown, contributions, token_ids)
    related = _related_history(model, breakdown, contributions, columns)
    explanations = []
    for position, column in enumerate(columns.tolist()):
        sources = tuple(
            SourceContribution(name, _round(totals[position]), int(ranks[name][position]))
            for name, totals in item_totals.items()
        )
        explanations.append(
            ItemExplanation(
                item_id=model.item_ids[column],
                model_score=_round(sum(totals[position] for totals in item_totals.values())),
                proposed_by=tuple(
                    s.source for s in sources if s.rank <= request.k and s.contribution > 0
                ),
                sources=sources,
                features=features[position],
                because_you_viewed=related[position],
            )
        )
    return tuple(explanations)


def _contributions(breakdown: ScoreBreakdown, columns: np.ndarray) -> dict[str, np.ndarray]:
    """Per term, each slot's contribution to each explained item ([slots, items]);
    popularity as a single slot."""
    per_term = {
        name: term.weights[:, None].astype(np.float64) * term.rows[:, columns]
        for name, term in breakdown.terms.items()
    }
    per_term[POPULARITY] = breakdown.popularity[columns][None, :].astype(np.float64)
    return per_term


def _term_totals(breakdown: ScoreBreakdown) -> dict[str, np.ndarray]:
    # einsum, not ``@``: a BLAS call here took 20 ms with its threads contending for the
    # cores (measured on ml-100k), einsum's own loop 0.1 ms.
    totals = {
        name: np.einsum("s,sn->n", term.weights, term.rows)
        for name, term in breakdown.terms.items()
    }
    totals[POPULARITY] = breakdown.popularity
    return totals


def _ranks(totals: np.ndarray, eligible: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """1 + how many eligible items this term alone scores higher than each explained item."""
    others = np.sort(totals[eligible])
    return 1 + len(others) - np.searchsorted(others, totals[columns], side="right")


def _top_features(
    model: LoadedModel,
    breakdown: ScoreBreakdown,
    contributions: dict[str, np.ndarray],
    token_ids: dict[int, str],
) -> list[tuple[FeatureContribution, ...]]:
    """Per explained item, the history items and tokens with the largest contributions
    (either sign)."""
    values = np.concatenate([contributions[name] for name in breakdown.terms])  # [slots, items]
    slot_terms: list[str] = []
    slot_values: list[str] = []  # the item id or token each slot holds; "" for padding
    for name, term in breakdown.terms.items():
        is_item = TERM_FEATURES[name] == "history_items"
        padding = model.n_items if is_item else model.manifest.n_tokens
        for slot in term.slots.tolist():
            slot_terms.append(name)
            if slot == padding:
                slot_values.append("")
            else:
                slot_values.append(model.item_ids[slot] if is_item else token_ids[slot])
    shown = np.array([bool(v) for v in slot_values])
    found = []
    for column in values.T:
        candidates = np.flatnonzero(shown & (column != 0))
        best = candidates[np.argsort(-np.abs(column[candidates]), kind="stable")[:TOP_FEATURES]]
        found.append(
            tuple(
                FeatureContribution(
                    TERM_FEATURES[slot_terms[i]], slot_values[i], slot_terms[i], _round(column[i])
                )
                for i in best.tolist()
            )
        )
    return found


def _related_history(
    model: LoadedModel,
    breakdown: ScoreBreakdown,
    contributions: dict[str, np.ndarray],
    columns: np.ndarray,
) -> list[tuple[RelatedHistoryItem, ...]]:
    """Per explained item, the history items whose rows raised its score most, summed over
    the history terms."""
    by_item = np.zeros((model.n_items + 1, len(columns)))  # + the padding slot
    for name in HISTORY_TERMS:
        np.add.at(by_item, breakdown.terms[name].slots, contributions[name])
    found = []
    for position, column in enumerate(columns.tolist()):
        values = by_item[: model.n_items, position]
        positive = np.flatnonzero(values > 0)
        best = positive[np.argsort(-values[positive], kind="stable")[:TOP_HISTORY_ITEMS]]
        found.append(
            tuple(
                RelatedHistoryItem(
                    model.item_ids[h], _round(values[h]), _neighbour_rank(model, h, column)
                )
                for h in best.tolist()
            )
        )
    return found


def _neighbour_rank(model: LoadedModel, item: int, related: int) -> int | None:
    if model.neighbours is None:
        return None
    found = np.flatnonzero(model.neighbours.indices[item] == related)
    return int(found[0]) + 1 if found.size else None


def _round(value: float) -> float:
    return round(float(value), 6)
