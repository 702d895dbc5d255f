"""Choose the two-stage model's blend weights on a validation split, then refit on everything.

The same warm split as the hybrid's tuning (``tuning.py``): per user the last 20% of
interactions held out. The model is fitted once on the rest; the candidates and their
features do not depend on the weights tuned here (the ANN query's direction is the history
vector's), so each is computed once per validation user and every weight combination only
re-blends a few hundred numbers per user:

1. warm: ``w_pop`` and ``w_neighbours`` on a grid, NDCG@10 of the held-out items;
2. cold: the same users ranked from their attributes alone (the history hidden),
   ``w_pop_cold`` on a grid: popularity against the token vectors (at ``w_demo``).

Candidates come from exact search here: the ANN index is built once, at export, from the
final embeddings, and its recall against exact search is measured there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from app.retrieval import candidate_features, candidates
from app.training.metrics import ranking_metrics
from app.training.split import time_split
from app.training.tuning import VALIDATION_SHARE
from app.training.two_stage import ExactSearch, TwoStageParams, TwoStageRecommender
from app.training.types import TrainingData

K = 10
POP_WEIGHTS = (0.0, 0.03, 0.1, 0.3, 1.0)
NEIGHBOUR_WEIGHTS = (0.0, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
COLD_POP_WEIGHTS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)


@dataclass(frozen=True)
class TwoStageTuningReport:
    """What tuning chose and how it scored on validation (NDCG@10); ``cold_*`` rank the
    validation users from their attributes alone."""

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
    features: np.ndarray  # [C, 2]: popularity, neighbours


def train_two_stage(
    data: TrainingData,
    base: TwoStageParams | None = None,
    *,
    max_validation_users: int = 1000,
    seed: int = 0,
) -> tuple[TwoStageRecommender, TwoStageTuningReport]:
    """Tune on a validation split, then fit on all of ``data``."""
    report = tune_two_stage(data, base, max_validation_users=max_validation_users, seed=seed)
    return TwoStageRecommender(report.params).fit(data), report


def tune_two_stage(
    data: TrainingData,
    base: TwoStageParams | None = None,
    *,
    max_validation_users: int = 1000,
    seed: int = 0,
) -> TwoStageTuningReport:
    started = time.monotonic()
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
    empty = np.empty(0, dtype=np.int64)
    warm = [_parts(model, histories[u], tokens[u], seen[u], search) for u in users]
    cold = [_parts(model, empty, tokens[u], empty, search) for u in users]
    popular = model.arrays().popular
    pop_ndcg = _ndcg([_without(popular, seen[u])[:K] for u in users], targets)
    cold_pop_ndcg = _ndcg([popular[:K]] * len(users), targets)
    best_warm, w_pop, w_neighbours = -1.0, params.w_pop, params.w_neighbours
    for pop_weight in POP_WEIGHTS:
        for neighbour_weight in NEIGHBOUR_WEIGHTS:
            ndcg = _ndcg(_blended_top(warm, pop_weight, neighbour_weight), targets)
            if ndcg > best_warm + 1e-6:
                best_warm, w_pop, w_neighbours = ndcg, pop_weight, neighbour_weight
    best_cold, w_pop_cold = -1.0, params.w_pop_cold
    for pop_weight in COLD_POP_WEIGHTS:
        ndcg = _ndcg(_blended_top(cold, pop_weight, 0.0), targets)
        if ndcg > best_cold + 1e-6:
            best_cold, w_pop_cold = ndcg, pop_weight
    return TwoStageTuningReport(
        params=replace(params, w_pop=w_pop, w_neighbours=w_neighbours, w_pop_cold=w_pop_cold),
        warm_ndcg=best_warm,
        cold_ndcg=best_cold,
        popularity_ndcg=pop_ndcg,
        cold_popularity_ndcg=cold_pop_ndcg,
        seconds=time.monotonic() - started,
    )


def _parts(
    model: TwoStageRecommender,
    history: np.ndarray,
    tokens: np.ndarray,
    seen: np.ndarray,
    search: ExactSearch,
) -> _Parts:
    """The user's candidates (never an item they interacted with) and their score parts."""
    user = model.user_vector(history, tokens)
    arrays = model.arrays(search)
    found = candidates(arrays, model.params.retrieval, user, history)
    found = _without(found, seen)
    features = candidate_features(arrays, model.params.retrieval, history, found)
    similarity = arrays.item_vectors[found].astype(np.float64) @ user.astype(np.float64)
    return _Parts(found, similarity, features.astype(np.float64))


def _blended_top(parts: list[_Parts], w_pop: float, w_neighbours: float) -> list[np.ndarray]:
    tops = []
    weights = np.array([w_pop, w_neighbours])
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
