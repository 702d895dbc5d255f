"""The one set of ranking metrics the build's tuning and the evaluation share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.data.types import Dataset
from app.training.metrics import evaluate_scorer, ranking_metrics, user_metrics
from app.training.split import time_split
from app.training.types import training_data_from

D = 1 / np.log2(np.arange(2, 12))


def test_ndcg_recall_and_hit_against_hand_computed_values():
    metrics = user_metrics(
        [["a", "x", "b"], ["x", "y"], [f"n{k}" for k in range(10)]],
        [{"a", "b"}, {"y", "z", "w"}, {"q"}],
        k=10,
    )
    np.testing.assert_allclose(metrics.ndcg, [(D[0] + D[2]) / (D[0] + D[1]), D[1] / D[:3].sum(), 0])
    np.testing.assert_allclose(metrics.recall, [1.0, 1 / 3, 0.0])
    np.testing.assert_allclose(metrics.hit, [1.0, 1.0, 0.0])


def test_recall_and_ideal_dcg_are_capped_at_k():
    relevant = {f"r{k}" for k in range(15)}
    ranked = [f"r{k}" for k in range(10)]
    metrics = user_metrics([ranked], [relevant], k=10)
    assert metrics.ndcg[0] == pytest.approx(1.0)
    assert metrics.recall[0] == pytest.approx(1.0)  # hits / min(|relevant|, k)
    only_first_k = user_metrics([[*ranked[:2], *["n"] * 8, "r12"]], [relevant], k=10)
    assert only_first_k.recall[0] == pytest.approx(0.2)  # the 11th item is not counted
    assert only_first_k.hit[0] == 1.0


def test_index_metrics_are_the_same_definition_as_id_metrics():
    top = np.array([[5, 1, 2], [7, 8, 9], [3, 4, -1]])
    relevant = [np.array([1, 3]), np.array([4]), np.array([4, 3, 0, 6, 7])]
    by_index = ranking_metrics(top, relevant, k=3)
    by_ids = user_metrics(
        [[str(i) for i in row if i >= 0] for row in top], [{str(i) for i in r} for r in relevant], 3
    ).means(3)
    assert by_index == pytest.approx(by_ids)
    assert by_index["recall@3"] == pytest.approx((0.5 + 0.0 + 2 / 3) / 3)


def test_users_without_relevant_items_are_not_counted_by_index_and_refused_by_id():
    assert (
        ranking_metrics(np.array([[1], [2]]), [np.array([1]), np.array([])], k=1)["ndcg@1"] == 1.0
    )
    with pytest.raises(ValueError, match="no relevant items"):
        user_metrics([["a"]], [set()], k=10)


def test_evaluate_scorer_never_recommends_train_items():
    rows = [("u", "a", 1), ("u", "b", 2), ("u", "c", 3), ("u", "d", 4), ("u", "e", 5)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    data = training_data_from(Dataset(frame, pd.DataFrame(), pd.DataFrame()), {}, {})
    split = time_split(data, 0.2)

    def prefers_old_items(histories: list[np.ndarray], tokens: list[np.ndarray]) -> np.ndarray:
        return np.tile(-np.arange(data.n_items, dtype=float), (len(histories), 1))

    # a-d are train items and excluded, so the only candidate left, e, is the hit.
    assert evaluate_scorer(prefers_old_items, split, history_max=10, k=1)["ndcg@1"] == 1.0
