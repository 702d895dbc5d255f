"""The two-stage model for large catalogues, on the planted shop: what it learns, ONNX parity
against real onnxruntime, and the recall of its candidate stage against exact search."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.artifacts import (
    ANN_INDEX_FILE,
    DEMOGRAPHIC_ITEMS_FILE,
    DEMOGRAPHIC_WEIGHTS_FILE,
    ITEM_VECTORS_FILE,
    TWO_STAGE_MODEL_TYPE,
    read_manifest,
)
from app.retrieval import (
    RetrievalParams,
    ann_search,
    build_ann_index,
    candidate_features,
    candidates,
)
from app.training.cooccurrence import cooccurrence_neighbours
from app.training.export import ParityError, Probe
from app.training.export_two_stage import export_two_stage
from app.training.metrics import ranking_metrics
from app.training.onnx_ranker import build_ranker_graph
from app.training.split import time_split
from app.training.tuning import DEMO_L2_GRID
from app.training.two_stage import ExactSearch, TwoStageParams, TwoStageRecommender
from app.training.two_stage_tuning import train_two_stage
from app.training.types import TrainingData
from tests.training.conftest import item_id

pytestmark = pytest.mark.integration
EMPTY = np.empty(0, dtype=np.int64)
# Few candidates per source, so the ANN search (not the popular list) must find the items.
PARAMS = TwoStageParams(
    dimensions=16,
    history_max=30,
    neighbours=8,
    w_pop=0.2,
    w_neighbours=0.5,
    retrieval=RetrievalParams(ann_candidates=12, popular_candidates=3, recent_items=4),
)


@pytest.fixture(scope="module")
def model(planted_data: TrainingData) -> TwoStageRecommender:
    return TwoStageRecommender(PARAMS).fit(planted_data)


def index_of(data: TrainingData, item: str) -> int:
    return data.item_ids.index(item)


def test_neighbours_follow_the_sequences_and_are_padded() -> None:
    # 0 -> 1 -> 2 again and again; 3 follows 2 once; 4 is never seen.
    sequences = [np.array([0, 1, 2]), np.array([0, 1, 2, 3]), np.array([1, 2])]
    indices, scores = cooccurrence_neighbours(sequences, 5, 3, window=1, smoothing=0.0)
    assert indices[1].tolist() == [2, 0, -1]  # 1 sits next to 2 three times, to 0 twice
    assert scores[1][:2].tolist() == pytest.approx([0.6, 0.4])
    assert indices[2].tolist() == [1, 3, -1]  # 2 sits next to 1 three times, to 3 once
    assert scores[2][0] == pytest.approx(0.75)
    assert indices[4].tolist() == [-1, -1, -1]
    assert np.isneginf(scores[4]).all()
    assert all(row not in indices[row] for row in range(5))


def test_embeddings_place_a_category_near_itself(
    model: TwoStageRecommender, planted_data: TrainingData
) -> None:
    vectors = model.arrays().item_vectors.astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-2)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    for category in ("a", "b"):
        rows = [index_of(planted_data, item_id(category, k)) for k in range(20)]
        nearest = [planted_data.item_ids[i] for i in similarity[rows].argmax(axis=1)]
        assert sum(item.startswith(category) for item in nearest) >= 16, nearest


def test_recommends_the_next_item_of_the_users_category(
    model: TwoStageRecommender, planted_data: TrainingData
) -> None:
    history = np.array([index_of(planted_data, item_id("a", k)) for k in (3, 4, 5)])
    items, scores = model.rank(history, EMPTY, ExactSearch(model.arrays().item_vectors))
    assert not np.isin(items, history).any()
    best = [planted_data.item_ids[i] for i in items[np.argsort(-scores)[:3]]]
    assert best[0] == item_id("a", 6)
    assert all(item.startswith(("a", "c")) for item in best)


def test_cold_users_get_their_groups_items(
    model: TwoStageRecommender, planted_data: TrainingData
) -> None:
    search = ExactSearch(model.arrays().item_vectors)
    for gender, category, other in (("F", "a", "b"), ("M", "b", "a")):
        tokens = np.array([planted_data.tokens.index(f"gender={gender}")])
        items, scores = model.rank(EMPTY, tokens, search)
        top = [planted_data.item_ids[i] for i in items[np.argsort(-scores)[:5]]]
        assert sum(item.startswith(category) for item in top) >= 2, top
        assert not any(item.startswith(other) for item in top), top


def test_the_demographic_term_alone_gives_cold_users_their_groups_items(
    planted_data: TrainingData,
) -> None:
    # No token vectors (w_demo 0) and no popularity: only the demographic lists can rank.
    params = replace(PARAMS, w_demo=0.0, w_pop_cold=0.0, w_demo_cold=1.0, cold_items=40)
    model = TwoStageRecommender(params).fit(planted_data)
    arrays = model.arrays()
    assert len(arrays.demographic_items) == 40
    assert arrays.demographic_weights.shape == (planted_data.n_tokens, 40)
    search = ExactSearch(arrays.item_vectors)
    for gender, category, other in (("F", "a", "b"), ("M", "b", "a")):
        tokens = np.array([planted_data.tokens.index(f"gender={gender}")])
        items, scores = model.rank(EMPTY, tokens, search)
        assert np.isin(arrays.demographic_items, items).all()  # the list is a source
        top = [planted_data.item_ids[i] for i in items[np.argsort(-scores)[:5]]]
        # Their group's items and the three popular ones everybody takes ("c0x").
        assert sum(item.startswith(category) for item in top) >= 2, top
        assert all(item.startswith((category, "c0")) for item in top), top
        assert not any(item.startswith(other) for item in top), top


def test_a_cold_user_gets_the_demographic_items_their_tokens_score_highest(
    planted_data: TrainingData,
) -> None:
    retrieval = replace(PARAMS.retrieval, demographic_candidates=5, popular_candidates=0)
    params = replace(PARAMS, cold_items=40, retrieval=retrieval)
    model = TwoStageRecommender(params).fit(planted_data)
    arrays = model.arrays()  # no index: the demographic and popular lists only
    tokens = np.array([planted_data.tokens.index("gender=F")])
    found = candidates(arrays, retrieval, model.user_vector(EMPTY, tokens), EMPTY, tokens)
    weights = arrays.demographic_weights[tokens[0]]
    best = arrays.demographic_items[np.argsort(-weights, kind="stable")[:5]]
    assert sorted(found.tolist()) == sorted(best.tolist())


def test_users_with_a_history_get_no_demographic_candidates_or_features(
    planted_data: TrainingData,
) -> None:
    params = replace(PARAMS, w_demo_cold=1.0, cold_items=40)
    model = TwoStageRecommender(params).fit(planted_data)
    arrays = model.arrays(ExactSearch(model.arrays().item_vectors))
    tokens = np.array([planted_data.tokens.index("gender=F")])
    history = np.array([index_of(planted_data, item_id("b", k)) for k in (3, 4)])
    user = model.user_vector(history, tokens)
    with_tokens = candidates(arrays, params.retrieval, user, history, tokens)
    assert (
        with_tokens.tolist() == candidates(arrays, params.retrieval, user, history, EMPTY).tolist()
    )
    assert len(with_tokens) < len(arrays.demographic_items)
    # A cold user's affinity is their tokens' mean weight; without tokens it is zero.
    cold = candidates(arrays, params.retrieval, model.user_vector(EMPTY, tokens), EMPTY, tokens)
    listed = np.flatnonzero(np.isin(cold, arrays.demographic_items))
    column = list(arrays.demographic_items)
    expected = [arrays.demographic_weights[tokens[0], column.index(i)] for i in cold[listed]]
    affinity = candidate_features(arrays, params.retrieval, EMPTY, tokens, cold)[:, 1]
    np.testing.assert_allclose(affinity[listed], expected, rtol=1e-6)
    assert not affinity[np.setdiff1d(np.arange(len(cold)), listed)].any()
    assert not candidate_features(arrays, params.retrieval, EMPTY, EMPTY, cold)[:, 1].any()


def test_tuning_fits_the_cold_weights_on_users_whose_history_is_hidden(
    planted_data: TrainingData,
) -> None:
    _, report = train_two_stage(planted_data, PARAMS)
    assert report.cold_ndcg > report.cold_popularity_ndcg
    assert report.params.w_demo_cold > 0.0  # the demographic term earns its place
    assert report.params.cold_l2 in DEMO_L2_GRID


def test_beats_popularity_on_held_out_items(planted_data: TrainingData) -> None:
    split = time_split(planted_data, 0.2)
    model, report = train_two_stage(split.train, PARAMS)
    assert report.warm_ndcg > report.popularity_ndcg
    search = ExactSearch(model.arrays().item_vectors)
    seen = split.train.histories(max_items=1000)
    users = [u for u in range(planted_data.n_users) if len(split.targets[u])]
    tops = []
    for u in users:
        items, scores = model.rank(seen[u], EMPTY, search)
        tops.append(items[np.argsort(-scores, kind="stable")[:10]])
    ndcg = ranking_metrics(np.array(tops), [split.targets[u] for u in users], 10)["ndcg@10"]
    popular = model.arrays().popular
    pop_tops = np.array([popular[~np.isin(popular, seen[u])][:10] for u in users])
    pop_ndcg = ranking_metrics(pop_tops, [split.targets[u] for u in users], 10)["ndcg@10"]
    assert ndcg > 2 * pop_ndcg


def test_ann_index_finds_what_exact_search_finds(model: TwoStageRecommender) -> None:
    vectors = model.arrays().item_vectors
    index = build_ann_index(vectors)
    exact = ExactSearch(vectors)
    rng = np.random.default_rng(0)
    recalls = []
    for _ in range(30):
        query = rng.standard_normal(vectors.shape[1]).astype(np.float32)
        nearest = ann_search(exact, query, 10)
        recalls.append(np.isin(nearest, ann_search(index, query, 10)).mean())
    assert np.mean(recalls) >= 0.95


def test_a_catalogue_up_to_the_one_thread_limit_gets_the_same_index_every_build() -> None:
    # Enough items that a concurrent build links them differently from one build to the next.
    vectors = np.random.default_rng(0).standard_normal((5_000, 32)).astype(np.float32)
    assert bytes(build_ann_index(vectors).save()) == bytes(build_ann_index(vectors).save())


def test_candidates_hold_the_exact_top_k(
    model: TwoStageRecommender, planted_data: TrainingData
) -> None:
    # With exact search standing in for the index, the candidate stage loses nothing.
    exact = ExactSearch(model.arrays().item_vectors)
    histories = planted_data.histories(PARAMS.history_max)
    for history in histories[:40]:
        scores = model.score_all(history, EMPTY, exact)
        scores[history] = -np.inf
        best = np.argsort(-scores, kind="stable")[:5]
        user = model.user_vector(history, EMPTY)
        found = candidates(model.arrays(exact), PARAMS.retrieval, user, history, EMPTY)
        assert np.isin(best, found).all()


def test_export_checks_parity_and_measures_recall(
    model: TwoStageRecommender, planted_data: TrainingData, tmp_path: Path
) -> None:
    histories = planted_data.histories(PARAMS.history_max)
    users = [Probe(h, EMPTY) for h in histories[:30]]
    manifest, recall = export_two_stage(
        model,
        tmp_path / "model",
        version="v1",
        data_fingerprint="sha256:test",
        offline_metrics={},
        recall_users=users,
    )
    assert manifest.model_type == TWO_STAGE_MODEL_TYPE
    assert manifest.parity.max_abs_diff <= manifest.parity.tolerance
    assert manifest.parity.samples
    assert manifest.parity.probes == 64
    assert recall.users == 30
    assert recall.ann_recall >= 0.9
    assert recall.candidate_recall >= 0.9
    assert manifest.offline_metrics["candidate_recall@10"] == recall.candidate_recall
    written = read_manifest(tmp_path / "model")
    assert {
        ITEM_VECTORS_FILE,
        ANN_INDEX_FILE,
        DEMOGRAPHIC_ITEMS_FILE,
        DEMOGRAPHIC_WEIGHTS_FILE,
    } <= set(written.artifacts)


def test_export_refuses_a_graph_that_scores_differently(
    model: TwoStageRecommender, tmp_path: Path
) -> None:
    # The graph of the model, checked against a reference whose neighbour weight differs.
    skewed = TwoStageRecommender(replace(PARAMS, w_neighbours=5.0))
    skewed.__dict__.update({k: v for k, v in model.__dict__.items() if k != "params"})
    with pytest.raises(ParityError):
        export_two_stage(
            skewed,
            tmp_path / "bad",
            version="v1",
            data_fingerprint="sha256:test",
            offline_metrics={},
            recall_users=[],
            graph=build_ranker_graph(model),
        )
    assert not (tmp_path / "bad").exists()


def test_ease_neighbour_lists_cover_the_popular_items(planted_data: TrainingData) -> None:
    params = TwoStageParams(dimensions=8, neighbour_source="ease", ease_items=30, ease_l2=10.0)
    model = TwoStageRecommender(params).fit(planted_data)
    arrays = model.arrays()
    listed = np.flatnonzero((arrays.neighbours >= 0).any(axis=1))
    assert 0 < len(listed) <= 30
    assert set(listed) <= set(arrays.popular[:30].tolist())
    # Only the fitted items appear in the lists, and every list is best first.
    neighbours = arrays.neighbours[listed]
    assert set(neighbours[neighbours >= 0].tolist()) <= set(listed.tolist())
    scores = arrays.neighbour_scores[listed]
    listed_next = np.isfinite(scores[:, 1:])  # lists shorter than the row end in -inf
    assert (scores[:, 1:][listed_next] <= scores[:, :-1][listed_next]).all()


def test_a_long_read_keeps_the_related_items_with_the_largest_neighbour_scores(
    model: TwoStageRecommender, planted_data: TrainingData
) -> None:
    arrays = model.arrays(ExactSearch(model.arrays().item_vectors))
    history = np.array([index_of(planted_data, item_id("b", k)) for k in range(6)])
    reads_all = replace(PARAMS.retrieval, ann_candidates=0, popular_candidates=0, recent_items=6)
    user = model.user_vector(history, EMPTY)
    every_related = candidates(arrays, reads_all, user, history, EMPTY)
    capped = replace(reads_all, neighbour_candidates=3)
    kept = candidates(arrays, capped, user, history, EMPTY)
    assert len(every_related) > 3
    affinity = candidate_features(arrays, reads_all, history, EMPTY, every_related)[:, 1]
    best = every_related[np.argsort(-affinity, kind="stable")[:3]]
    assert sorted(kept.tolist()) == sorted(best.tolist())
