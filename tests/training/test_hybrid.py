from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from app.training.demographic import fit_token_items
from app.training.hybrid import (
    NEGLIGIBLE_WEIGHT,
    HybridParams,
    HybridRecommender,
    recency_weights,
    weighted_window,
)
from app.training.metrics import evaluate_scorer
from app.training.popularity import PopularityModel
from app.training.split import time_split
from app.training.tuning import train_hybrid
from app.training.types import TrainingData


def test_tuned_hybrid_beats_popularity_on_planted_structure(planted_data: TrainingData) -> None:
    split = time_split(planted_data)
    prior = PopularityModel().fit(split.train).prior().astype(np.float64)

    def popularity(histories: list[np.ndarray], tokens: list[np.ndarray]) -> np.ndarray:
        return np.tile(prior, (len(histories), 1))

    model, report = train_hybrid(split.train, time_budget_seconds=10)
    hybrid_ndcg = evaluate_scorer(model.score, split, history_max=50)["ndcg@10"]
    popularity_ndcg = evaluate_scorer(popularity, split, history_max=50)["ndcg@10"]
    assert hybrid_ndcg > popularity_ndcg + 0.2
    assert report.warm_ndcg > report.popularity_ndcg
    assert report.params.w_demo + report.params.w_pop > 0  # cold users must not get zeros


def test_recommend_excludes_history_and_follows_the_newest_item(
    planted_data: TrainingData,
) -> None:
    model = HybridRecommender().fit(planted_data)
    history = np.array([model.item_ids_.index(f"a{k:02d}") for k in (3, 4, 5)])
    top, scores = model.recommend([history], [np.empty(0, dtype=np.int64)], k=5)
    assert not set(top[0]) & set(history)
    assert np.all(np.diff(scores[0]) <= 0)
    assert model.item_ids_[top[0][0]] == "a06"  # the planted next step after a05


def test_a_new_event_changes_the_ranking(planted_data: TrainingData) -> None:
    model = HybridRecommender().fit(planted_data)
    none = np.empty(0, dtype=np.int64)
    before, _ = model.recommend([np.array([model.item_ids_.index("b10")])], [none], k=3)
    after_event = np.array([model.item_ids_.index(i) for i in ("b10", "a02")])
    after, _ = model.recommend([after_event], [none], k=3)
    assert model.item_ids_[after[0][0]] == "a03"
    assert before[0].tolist() != after[0].tolist()


def test_score_validates_indices_and_fit_state(planted_data: TrainingData) -> None:
    with pytest.raises(RuntimeError, match="fit"):
        HybridRecommender().score([np.array([0])], [np.array([0])])
    model = HybridRecommender(HybridParams(history_max=50)).fit(planted_data)
    with pytest.raises(ValueError, match="out of range"):
        model.score([np.array([planted_data.n_items])], [np.empty(0, dtype=np.int64)])
    with pytest.raises(ValueError, match="token lists"):
        model.score([np.array([0])], [])


def test_oversized_catalogue_is_refused(planted_data: TrainingData) -> None:
    with pytest.raises(ValueError, match="max_dense_items"):
        HybridRecommender(HybridParams(max_dense_items=10)).fit(planted_data)


def test_cold_start_is_tuned_on_users_whose_whole_history_is_hidden(
    planted_data: TrainingData,
) -> None:
    # In the planted shop gender decides the category, so attributes must beat popularity
    # for a user the model has never seen.
    model, report = train_hybrid(planted_data, time_budget_seconds=10)
    assert report.cold_ndcg > report.cold_popularity_ndcg + 0.1
    assert report.params.w_demo > 0
    # The model serves the demographic form and strength tuning chose, fitted on everyone.
    chosen = fit_token_items(
        report.params.demo_model,
        report.params.demo_strength,
        planted_data.user_tokens,
        planted_data.interaction_matrix(),
    )
    np.testing.assert_allclose(model.matrices().demographic, chosen)
    tokens = [
        np.array([model.tokens_.index("gender=F")]),
        np.array([model.tokens_.index("gender=M")]),
    ]
    top, _ = model.recommend([np.empty(0, dtype=np.int64)] * 2, tokens, k=5)
    categories = [{model.item_ids_[i][0] for i in row} - {"c"} for row in top]
    assert categories == [{"a"}, {"b"}]


def test_next_items_term_is_tuned_in_and_changes_scores(planted_data: TrainingData) -> None:
    model, report = train_hybrid(planted_data, time_budget_seconds=10)
    history = [np.array([model.item_ids_.index(f"a{k:02d}") for k in (3, 4, 5)])]
    tokens = [np.empty(0, dtype=np.int64)]
    without = HybridRecommender(replace(model.params, w_seq=0.0)).fit(planted_data)
    assert report.params.w_seq > 0
    assert not np.allclose(model.score(history, tokens), without.score(history, tokens))


@pytest.mark.parametrize(
    ("limit", "decay", "window"),
    [(500, 0.9, 29), (500, 0.95, 59), (50, 0.95, 50), (30, 0.8, 14), (500, 1.0, 500)],
)
def test_weighted_window_drops_only_negligible_weights(
    limit: int, decay: float, window: int
) -> None:
    assert weighted_window(limit, decay) == window
    if window < limit:  # the first item left out weighs under the bound, the last kept not
        assert decay**window <= NEGLIGIBLE_WEIGHT < decay ** (window - 1)


def test_each_history_term_reads_its_own_window_with_its_own_decay(
    planted_data: TrainingData,
) -> None:
    params = HybridParams(
        ease_decay=1.0,
        ease_window=300,
        seq_decay=0.5,
        seq_window=7,
        w_seq=0.5,
        w_trans=0.0,
        w_demo=0.0,
        w_pop=0.0,
    )
    model = HybridRecommender(params).fit(planted_data)
    m = model.matrices()
    history = np.random.default_rng(3).integers(0, model.n_items, size=400)
    none = np.empty(0, dtype=np.int64)
    ease = recency_weights([history[-300:]], model.n_items, 1.0) @ m.item_item
    seq = recency_weights([history[-7:]], model.n_items, 0.5) @ m.sequential
    assert not params.folds_next_items
    assert params.read_items == 300
    np.testing.assert_allclose(model.score([history], [none]), ease + 0.5 * seq, rtol=1e-6)


def test_max_normalised_ease_term_peaks_at_its_weight_for_any_history_length(
    planted_data: TrainingData,
) -> None:
    params = HybridParams(ease_norm="max", w_ease=2.0, w_trans=0.0, w_demo=0.0, w_pop=0.0)
    model = HybridRecommender(params).fit(planted_data)
    none = np.empty(0, dtype=np.int64)
    for length in (1, 5, 40):
        history = np.arange(length) % model.n_items
        scores = model.score([history], [none])
        assert np.abs(scores).max() == pytest.approx(2.0)
    assert not model.score([none], [none]).any()  # no history: zeros, not a division by 0
