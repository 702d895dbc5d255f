"""The recommender contract, run against every model and baseline on the planted shop.

Every recommender takes its hyperparameters at construction, learns in ``fit`` and answers a
batch of users described by history and tokens; the evaluation relies on exactly this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from app.retrieval import RetrievalParams
from app.training.baselines import (
    EASE,
    DemographicRidge,
    ItemKNN,
    Popularity,
    RP3Beta,
    SegmentPopularity,
)
from app.training.hybrid import HybridParams, HybridRecommender
from app.training.metrics import evaluate_scorer
from app.training.recommender import Recommender, recommend_in_blocks
from app.training.split import time_split
from app.training.two_stage import TwoStageParams, TwoStageRecommender
from app.training.types import TrainingData
from tests.training.conftest import item_id

FACTORIES: dict[str, Callable[[], Recommender[Any]]] = {
    "hybrid": lambda: HybridRecommender(HybridParams(w_trans=0.5, w_seq=0.5)),
    "two-stage": lambda: TwoStageRecommender(
        TwoStageParams(dimensions=8, neighbours=8, retrieval=RetrievalParams(ann_candidates=12))
    ),
    "popularity": Popularity,
    "segment popularity": SegmentPopularity,
    "EASE": lambda: EASE(l2=10.0),
    "item-kNN": lambda: ItemKNN(neighbours=10),
    "RP3beta": lambda: RP3Beta(alpha=1.0, beta=0.5),
    "demographic ridge": lambda: DemographicRidge(l2=10.0),
}
# What each learns from: history (item-item), tokens (demographic), or neither.
USES_HISTORY = {"hybrid", "two-stage", "EASE", "item-kNN", "RP3beta"}
USES_TOKENS = {"hybrid", "two-stage", "segment popularity", "demographic ridge"}
EMPTY = np.empty(0, dtype=np.int64)

pytestmark = pytest.mark.parametrize("name", list(FACTORIES))


@pytest.fixture(scope="module")
def fitted(planted_data: TrainingData) -> dict[str, Recommender[Any]]:
    return {name: factory().fit(planted_data) for name, factory in FACTORIES.items()}


def batch(data: TrainingData, users: range) -> tuple[list[np.ndarray], list[np.ndarray]]:
    histories, tokens = data.histories(50), data.user_token_lists()
    return [histories[u] for u in users], [tokens[u] for u in users]


def test_hyperparameters_are_given_at_construction_and_fit_returns_the_model(
    name: str, planted_data: TrainingData
) -> None:
    model = FACTORIES[name]()
    before = model.params.as_dict()
    assert isinstance(before, dict)
    assert model.fit(planted_data) is model
    assert model.params.as_dict() == before  # fit learns, it does not retune
    assert model.item_ids_ == planted_data.item_ids
    assert model.tokens_ == planted_data.tokens


def test_an_unfitted_model_refuses_to_score(name: str) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        FACTORIES[name]().score([EMPTY], [EMPTY])


def test_recommend_is_batched_best_first_and_excludes_the_history(
    name: str, planted_data: TrainingData, fitted: dict[str, Recommender[Any]]
) -> None:
    model = fitted[name]
    histories, tokens = batch(planted_data, range(12))
    ids, scores = model.recommend(histories, tokens, k=5)
    assert ids.shape == scores.shape == (12, 5)
    assert model.score(histories, tokens).shape == (12, planted_data.n_items)
    assert np.all(np.diff(scores, axis=1) <= 0)
    for row, history in enumerate(histories):
        assert not set(ids[row]) & set(history.tolist())
    # One user at a time answers the same as the batch.
    alone, _ = model.recommend(histories[3:4], tokens[3:4], k=5)
    np.testing.assert_array_equal(alone[0], ids[3])


def test_an_explicit_exclusion_replaces_the_history(
    name: str, planted_data: TrainingData, fitted: dict[str, Recommender[Any]]
) -> None:
    model = fitted[name]
    histories, tokens = batch(planted_data, range(2))
    first, _ = model.recommend(histories, tokens, k=3)
    blocked = [first[0][:1], EMPTY]
    ids, _ = model.recommend(histories, tokens, k=3, exclude=blocked)
    assert first[0][0] not in ids[0]


def test_a_short_catalogue_pads_with_minus_one(
    name: str, planted_data: TrainingData, fitted: dict[str, Recommender[Any]]
) -> None:
    everything = np.arange(planted_data.n_items - 2)
    ids, scores = fitted[name].recommend([everything], [EMPTY], k=5)
    kept = ids[0][ids[0] >= 0]
    assert set(kept) <= {planted_data.n_items - 2, planted_data.n_items - 1}
    assert np.all(np.isneginf(scores[0][ids[0] < 0]))


def test_ids_come_back_as_the_fitted_item_ids_in_blocks(
    name: str, planted_data: TrainingData, fitted: dict[str, Recommender[Any]]
) -> None:
    model = fitted[name]
    histories, tokens = batch(planted_data, range(7))
    whole, _ = model.recommend(histories, tokens, k=4)
    lists = recommend_in_blocks(model, histories, tokens, 4, block_cells=2 * planted_data.n_items)
    assert lists == [[planted_data.item_ids[i] for i in row if i >= 0] for row in whole]


def test_what_it_learns_from_beats_chance_on_planted_structure(
    name: str, planted_data: TrainingData
) -> None:
    split = time_split(planted_data)
    model = FACTORIES[name]().fit(split.train)
    ndcg = evaluate_scorer(model.score, split, history_max=50)["ndcg@10"]
    # Ten random items of 60 hold a held-out item ~1/6 of the time: far below these.
    assert ndcg > 0.25
    if name in USES_TOKENS:
        # A cold woman is shown category a (women's) before category b.
        female = np.array([planted_data.tokens.index("gender=F")])
        ids, _ = model.recommend([EMPTY], [female], k=5)
        shown = [planted_data.item_ids[i][0] for i in ids[0]]
        assert shown.count("a") > shown.count("b")
    if name in USES_HISTORY:
        # After a walk through category b, the next item of b is ranked among the top 5.
        walk = np.array([planted_data.item_ids.index(item_id("b", k)) for k in range(3, 7)])
        ids, _ = model.recommend([walk], [EMPTY], k=5)
        assert planted_data.item_ids.index(item_id("b", 7)) in ids[0]
