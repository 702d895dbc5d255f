from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.data.types import Dataset
from app.training.metrics import evaluate_scorer, ranking_metrics
from app.training.split import time_split
from app.training.types import training_data_from


def test_holds_out_the_last_fifth_rounded_at_least_one() -> None:
    rows = [("long", f"i{k}", k) for k in range(12)] + [("short", "i0", 5), ("short", "i1", 6)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    data = training_data_from(Dataset(frame, pd.DataFrame(), pd.DataFrame()), {}, {})
    split = time_split(data, 0.2)
    long_user, short_user = data.user_ids.index("long"), data.user_ids.index("short")
    names = [[data.item_ids[i] for i in t] for t in split.targets]
    assert sorted(names[long_user]) == ["i10", "i11"]  # 12 * 0.2 = 2.4 -> 2
    assert names[short_user] == ["i1"]  # 2 * 0.2 = 0.4 -> at least 1
    assert len(split.train.user_index) == 14 - 3


def test_targets_skip_items_already_seen_in_train() -> None:
    rows = [("u", "a", 1), ("u", "b", 2), ("u", "c", 3), ("u", "d", 4), ("u", "a", 5)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    data = training_data_from(Dataset(frame, pd.DataFrame(), pd.DataFrame()), {}, {})
    assert time_split(data, 0.2).targets[0].size == 0


def test_ndcg_recall_and_hit_rate_by_hand() -> None:
    top = np.array([[5, 1, 2], [7, 8, 9]])
    metrics = ranking_metrics(top, [np.array([1, 3]), np.array([4])], k=3)
    ideal = 1 + 1 / np.log2(3)
    assert metrics["ndcg@3"] == pytest.approx(((1 / np.log2(3)) / ideal + 0.0) / 2)
    assert metrics["recall@3"] == pytest.approx((0.5 + 0.0) / 2)
    assert metrics["hit_rate@3"] == pytest.approx(0.5)


def test_users_without_targets_are_not_counted() -> None:
    metrics = ranking_metrics(np.array([[1], [2]]), [np.array([1]), np.array([])], k=1)
    assert metrics["ndcg@1"] == 1.0


def test_evaluate_scorer_never_recommends_train_items() -> None:
    rows = [("u", "a", 1), ("u", "b", 2), ("u", "c", 3), ("u", "d", 4), ("u", "e", 5)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    data = training_data_from(Dataset(frame, pd.DataFrame(), pd.DataFrame()), {}, {})
    split = time_split(data, 0.2)

    def prefers_old_items(histories: list[np.ndarray], tokens: list[np.ndarray]) -> np.ndarray:
        return np.tile(-np.arange(data.n_items, dtype=float), (len(histories), 1))

    # a-d are train items and excluded, so the only candidate left, e, is the hit.
    assert evaluate_scorer(prefers_old_items, split, history_max=10, k=1)["ndcg@1"] == 1.0


def test_whole_steps_hold_out_a_basket_together() -> None:
    # Five interactions; the last fifth is one, but it shares its timestamp with two others.
    rows = [("u", "i0", 1), ("u", "i1", 2), ("u", "i2", 3), ("u", "i3", 3), ("u", "i4", 3)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    data = training_data_from(Dataset(frame, pd.DataFrame(), pd.DataFrame()), {}, {})
    assert time_split(data).targets[0].tolist() == [4]
    assert time_split(data, whole_steps=True).targets[0].tolist() == [2, 3, 4]
