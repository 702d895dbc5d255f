"""Choose the two-stage model's blend weights on a validation split, then refit on everything.

The same warm split as the hybrid's tuning (``tuning.py``): per user the last 20% of
interactions held out. The model is fitted once on the rest; the candidates and their
features do not depend on the weights tuned here (the ANN query's direction is the history
vector's), so each is computed once per validation user and every weight combination only
re-blends a few hundred numbers per user:

1. warm: the neighbour lists' source (co-occurrence in users' sequences, or EASE on the most
   popular items, with its λ and list length) and how many recent items they are read for,
   with ``w_pop`` and ``w_neighbours`` on a grid for each, NDCG@10 of the held-out items;
2. cold: like the dense hybrid's cold tuning, a draw of users loses every interaction; the
   token vectors, popularity and the demographic lists are refitted on the other users, and
   the cold λ, ``w_pop_cold`` and ``w_demo_cold`` are chosen on ranking everything the drawn
   users did from their attributes alone.

Candidates come from exact search here: the ANN index is built once, at export, from the
final embeddings, and its recall against exact search is measured there.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from itertools import product
from typing import Any

import numpy as np

from app.retrieval import RetrievalArrays, candidate_features, candidates
from app.training.metrics import ranking_metrics
from app.training.popularity import PopularityModel
from app.training.split import cold_user_split, time_split
from app.training.statistics import InteractionStatistics
from app.training.tuning import COLD_VALIDATION_SHARE, DEMO_L2_GRID, VALIDATION_SHARE
from app.training.two_stage import (
    ExactSearch,
    TwoStageParams,
    TwoStageRecommender,
    demographic_columns,
    demographic_weights,
    neighbour_lists,
    token_vectors,
)
from app.training.types import TrainingData

K = 10
POP_WEIGHTS = (0.0, 0.03, 0.1, 0.3, 1.0)
# EASE weights are an order of magnitude below co-occurrence shares: the grid reaches far
# enough for either source to lead the ranking.
NEIGHBOUR_WEIGHTS = (0.0, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
# (recent items, decay) the neighbour affinity and candidates read: the last few items with a
# steep decay, or much of the history alike (a shopper's whole basket history).
NEIGHBOUR_READS = ((10, 0.8), (30, 0.9), (100, 1.0))
# EASE's λ for the neighbour lists: its best value grows with the data (more co-occurrence
# to shrink); each costs one fit over the ``ease_items`` most popular items.
EASE_L2_GRID = (300.0, 1000.0, 3000.0)
# How many neighbours an item keeps from EASE: the lists are cut from the longest, best first.
EASE_LIST_LENGTHS = (20, 100)
COLD_POP_WEIGHTS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)
# The demographic term is a share of users (0..1) while the popularity prior is a log count:
# large weights let it outvote the prior and the embedding term.
COLD_DEMO_WEIGHTS = (0.0, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)


@dataclass(frozen=True)
class TwoStageTuningReport:
    """What tuning chose and how it scored on validation (NDCG@10); ``cold_*`` rank users
    whose every interaction was held out, from their attributes alone."""

    params: TwoStageParams
    warm_ndcg: float
    cold_ndcg: float
    popularity_ndcg: float
    cold_popularity_ndcg: float
    seconds: float


@dataclass(frozen=True)
class _Parts:
    """One validation user's candidates and the unweighted parts of their scores."""

    items: np.ndarray
    similarity: np.ndarray  # e_c · u
    features: np.ndarray  # [C, 2]: popularity, affinity


def train_two_stage(
    data: TrainingData,
    base: TwoStageParams | None = None,
    *,
    max_validation_users: int = 1000,
    seed: int = 0,
    time_budget_seconds: float = 240.0,
    statistics: InteractionStatistics | None = None,
) -> tuple[TwoStageRecommender, TwoStageTuningReport]:
    """Tune on a validation split within the budget (in this process), then fit on all of
    ``data``, its counts by ``statistics`` when given."""
    report = tune_two_stage(
        data,
        base,
        max_validation_users=max_validation_users,
        seed=seed,
        time_budget_seconds=time_budget_seconds,
    )
    return TwoStageRecommender(report.params).fit(data, statistics), report


def tune_two_stage(
    data: TrainingData,
    base: TwoStageParams | None = None,
    *,
    max_validation_users: int = 1000,
    seed: int = 0,
    time_budget_seconds: float = 240.0,
) -> TwoStageTuningReport:
    started = time.monotonic()
    deadline = started + time_budget_seconds
    params = base or TwoStageParams()
    split = time_split(data, VALIDATION_SHARE)
    model = TwoStageRecommender(params).fit(split.train)
    seen = split.train.histories(max_items=len(split.train.item_index))
    histories = split.train.histories(params.history_max)
    tokens = split.train.user_token_lists()
    eligible = np.flatnonzero(
        [len(t) > 0 and len(h) > 0 for t, h in zip(split.targets, histories, strict=True)]
    )
    if len(eligible) == 0:
        raise ValueError("no user has both fit and validation interactions: cannot tune")
    users = np.sort(np.random.default_rng(seed).permutation(eligible)[:max_validation_users])
    targets = [split.targets[u] for u in users]
    search = ExactSearch(model.arrays().item_vectors)
    popular = model.arrays().popular
    pop_ndcg = _ndcg([_without(popular, seen[u])[:K] for u in users], targets)
    # The neighbour lists' source and how much of the history they read: each variant's
    # candidates and affinities for the validation users, then the blend grid.
    lists = {params: (model.arrays().neighbours, model.arrays().neighbour_scores)}
    lists.update(_ease_lists(params, split.train, deadline))
    best_warm, chosen = -1.0, params
    for (listed, (neighbours, scores)), (recent, decay) in product(lists.items(), NEIGHBOUR_READS):
        variant = copy.copy(model)
        variant.params = replace(
            listed, retrieval=replace(params.retrieval, recent_items=recent, recent_decay=decay)
        )
        arrays = replace(model.arrays(search), neighbours=neighbours, neighbour_scores=scores)
        warm = [_parts(arrays, variant, histories[u], tokens[u], seen[u]) for u in users]
        for pop_weight in POP_WEIGHTS:
            for neighbour_weight in NEIGHBOUR_WEIGHTS:
                ndcg = _ndcg(_blended_top(warm, pop_weight, neighbour_weight), targets)
                if ndcg > best_warm + 1e-6:
                    best_warm = ndcg
                    chosen = replace(
                        variant.params, w_pop=pop_weight, w_neighbours=neighbour_weight
                    )
        if time.monotonic() > deadline:
            break
    params = chosen
    cold = _tune_cold(data, model, search, max_validation_users, seed, pop_ndcg)
    return TwoStageTuningReport(
        params=replace(
            params,
            w_pop_cold=cold.w_pop_cold,
            w_demo_cold=cold.w_demo_cold,
            cold_l2=cold.cold_l2,
        ),
        warm_ndcg=best_warm,
        cold_ndcg=cold.ndcg,
        popularity_ndcg=pop_ndcg,
        cold_popularity_ndcg=cold.popularity_ndcg,
        seconds=time.monotonic() - started,
    )


def _ease_lists(
    params: TwoStageParams, train: TrainingData, deadline: float
) -> dict[TwoStageParams, tuple[np.ndarray, np.ndarray]]:
    """EASE neighbour lists for every λ of ``EASE_L2_GRID`` the deadline leaves time for, each
    at every length of ``EASE_LIST_LENGTHS``, keyed by the parameters that make them."""
    interactions = train.interaction_matrix()
    popularity = PopularityModel().fit(train)
    lists = {}
    longest = max(EASE_LIST_LENGTHS)
    for l2 in EASE_L2_GRID:
        if time.monotonic() > deadline:
            break
        full = replace(params, neighbour_source="ease", ease_l2=l2, neighbours=longest)
        neighbours, scores = neighbour_lists(full, train, interactions, popularity)
        for length in EASE_LIST_LENGTHS:
            lists[replace(full, neighbours=length)] = (neighbours[:, :length], scores[:, :length])
    return lists


@dataclass(frozen=True)
class _ColdChoice:
    cold_l2: float
    w_pop_cold: float
    w_demo_cold: float
    ndcg: float
    popularity_ndcg: float


def _tune_cold(
    data: TrainingData,
    model: TwoStageRecommender,
    search: ExactSearch,
    max_users: int,
    seed: int,
    warm_popularity_ndcg: float,
) -> _ColdChoice:
    """Draw ``COLD_VALIDATION_SHARE`` of the users with attributes and interactions (at most
    ``max_users``), refit everything user-dependent without them (the item embeddings stay:
    they describe items), and grid the cold weights on ranking all they did. Without users
    to draw, the defaults and the warm popularity figure stand."""
    params = model.params
    keep = _ColdChoice(
        params.cold_l2,
        params.w_pop_cold,
        params.w_demo_cold,
        warm_popularity_ndcg,
        warm_popularity_ndcg,
    )
    has_tokens = np.diff(data.user_tokens.indptr) > 0
    active = np.bincount(data.user_index, minlength=data.n_users) > 0
    eligible = np.flatnonzero(has_tokens & active)
    if len(eligible) * COLD_VALIDATION_SHARE < 1 or len(eligible) < 2:
        return keep
    split = cold_user_split(data, COLD_VALIDATION_SHARE, seed, eligible, max_users)
    fit, users = split.train, split.users_with_targets()
    targets = [split.targets[u] for u in users]
    tokens = fit.user_token_lists()
    popularity = PopularityModel().fit(fit)
    interactions = fit.interaction_matrix()
    cold_model = copy.copy(model)  # the same arrays but its own token vectors
    cold_model.token_vectors_ = params.w_demo * token_vectors(
        fit,
        cold_model.history_vectors(fit.histories(params.history_max), model.arrays().item_vectors),
        params.demo_l2,
    )
    empty = np.empty(0, dtype=np.int64)
    popular = popularity.top_items().astype(np.int64)
    popularity_ndcg = _ndcg([popular[:K]] * len(users), targets)
    best = replace(keep, ndcg=-1.0, popularity_ndcg=popularity_ndcg)
    items, columns = demographic_columns(fit, interactions, popularity, params.cold_items)
    # A cold user's query, and so their ANN candidates, do not change with λ; the demographic
    # candidates (the best of the list for their tokens) and the affinity do.
    arrays = replace(
        model.arrays(_RememberedSearch(search)),
        popularity=popularity.prior(),
        popular=popular,
        demographic_items=items,
    )
    for l2 in DEMO_L2_GRID:
        fitted = replace(arrays, demographic_weights=demographic_weights(fit, columns, l2))
        parts = [_parts(fitted, cold_model, empty, tokens[u], empty) for u in users]
        for pop_weight, demo_weight in product(COLD_POP_WEIGHTS, COLD_DEMO_WEIGHTS):
            ndcg = _ndcg(_blended_top(parts, pop_weight, demo_weight), targets)
            if ndcg > best.ndcg + 1e-6:
                best = replace(
                    best, cold_l2=l2, w_pop_cold=pop_weight, w_demo_cold=demo_weight, ndcg=ndcg
                )
    return best


class _RememberedSearch:
    """Exact search that answers a query it has seen from memory: the cold tuning asks the
    same users' queries once per λ."""

    def __init__(self, search: ExactSearch) -> None:
        self._search = search
        self._answers: dict[tuple[bytes, int], Any] = {}

    def __len__(self) -> int:
        return len(self._search)

    def search(self, vectors: Any, count: int = K) -> Any:
        key = (np.asarray(vectors, dtype=np.float32).tobytes(), count)
        if key not in self._answers:
            self._answers[key] = self._search.search(vectors, count)
        return self._answers[key]


def _parts(
    arrays: RetrievalArrays,
    model: TwoStageRecommender,
    history: np.ndarray,
    tokens: np.ndarray,
    seen: np.ndarray,
) -> _Parts:
    """The user's candidates (never an item they interacted with) and their score parts."""
    user = model.user_vector(history, tokens)
    found = candidates(arrays, model.params.retrieval, user, history, tokens)
    found = _without(found, seen)
    features = candidate_features(arrays, model.params.retrieval, history, tokens, found)
    similarity = arrays.item_vectors[found].astype(np.float64) @ user.astype(np.float64)
    return _Parts(found, similarity, features.astype(np.float64))


def _blended_top(parts: list[_Parts], w_pop: float, w_affinity: float) -> list[np.ndarray]:
    tops = []
    weights = np.array([w_pop, w_affinity])
    for part in parts:
        scores = part.similarity + part.features @ weights
        tops.append(part.items[np.argsort(-scores, kind="stable")[:K]])
    return tops


def _without(items: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    return items[~np.isin(items, excluded)]


def _ndcg(tops: list[np.ndarray], targets: list[np.ndarray]) -> float:
    """Mean NDCG@K; lists shorter than K are padded with a never-relevant index."""
    padded = np.full((len(tops), K), -1, dtype=np.int64)
    for row, top in enumerate(tops):
        padded[row, : len(top)] = top[:K]
    return ranking_metrics(padded, targets, K)[f"ndcg@{K}"]
