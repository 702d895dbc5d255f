"""Tuning decides the hybrid's structure from the data: on data whose signal is order, the
transitions carry the blend; on data whose signal is a long-standing taste blurred by recent
noise, the EASE term reads the whole history; baskets never become transitions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.data.types import Dataset
from app.training.hybrid import HybridParams, HybridRecommender
from app.training.split import time_split
from app.training.tuning import tune_hybrid
from app.training.types import TrainingData, training_data_from

EMPTY = np.empty(0, dtype=np.int64)


def training_data(rows: list[tuple[str, str, int]]) -> TrainingData:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return training_data_from(Dataset(frame, pd.DataFrame(), pd.DataFrame()), {}, {})


def walks(n_users: int = 300, n_items: int = 80, length: int = 20, seed: int = 0) -> TrainingData:
    """Every user walks the same hidden successor map from a random start: what comes next
    is fixed by the last item, while which items go together says little about direction."""
    rng = np.random.default_rng(seed)
    successor = rng.permutation(n_items)
    rows = []
    for u in range(n_users):
        item = int(rng.integers(n_items))
        for step in range(length):
            rows.append((f"u{u}", f"i{item:03d}", 1000 * step))
            item = int(successor[item]) if rng.random() < 0.9 else int(rng.integers(n_items))
    return training_data(rows)


def tastes(n_users: int = 150, seed: int = 0) -> TrainingData:
    """Each user keeps one taste (a block of 50 of 300 items) over a long history, 60% of
    which is random noise spread evenly: the newest few dozen items say less than the whole."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        block = int(rng.integers(6))
        for step in range(200):
            if rng.random() < 0.4:
                item = 50 * block + int(rng.integers(50))
            else:
                item = int(rng.integers(300))
            rows.append((f"u{u}", f"i{item:03d}", 1000 * step))
    return training_data(rows)


def test_on_ordered_walks_tuning_leans_on_the_transitions() -> None:
    data = walks()
    params = tune_hybrid(data, time_budget_seconds=60).params
    split = time_split(data, 0.2)
    model = HybridRecommender(params).fit(split.train)
    histories = split.train.histories(params.history_max)
    users = [u for u, t in enumerate(split.targets) if len(t)]
    batch = [histories[u] for u in users]

    def first_hits(weights: dict[str, float]) -> float:
        model.params = HybridParams(**{**params.as_dict(), **weights})
        top, _ = model.recommend(batch, [EMPTY] * len(users), k=1)
        return float(np.mean([top[r, 0] in split.targets[u] for r, u in enumerate(users)]))

    off = {"w_ease": 0.0, "w_trans": 0.0, "w_seq": 0.0, "w_demo": 0.0, "w_pop": 0.0}
    tuned = first_hits({})
    transitions = first_hits({**off, "w_trans": 1.0})
    ease = first_hits({**off, "w_ease": 1.0})
    assert transitions > 1.5 * ease  # the data's signal is order
    assert params.w_trans > 0
    assert tuned >= transitions - 0.02  # and the blend follows it


def test_a_long_standing_taste_makes_the_ease_term_read_more_than_the_newest_items() -> None:
    params = tune_hybrid(tastes(), time_budget_seconds=60).params
    assert params.ease_items > HybridParams().ease_items
    assert params.ease_decay >= 0.95


def test_items_bought_together_never_lead_to_each_other() -> None:
    # Each user buys the basket {x, y} in one second, then z.
    rows = []
    for u in range(20):
        rows += [(f"u{u}", "x", 10), (f"u{u}", "y", 10), (f"u{u}", "z", 20)]
    data = training_data(rows)
    model = HybridRecommender(HybridParams(trans_smoothing=0.0)).fit(data)
    x, y, z = (data.item_ids.index(i) for i in "xyz")
    transitions = model.matrices().transitions
    assert transitions[x, y] == 0.0
    assert transitions[y, x] == 0.0
    assert transitions[x, z] > 0.0
    assert transitions[y, z] > 0.0


def test_the_regression_cuts_inside_baskets_only_when_told_to() -> None:
    # Baskets {x, y} then {z}: cut between steps, x never predicts y; cut anywhere, it does.
    rows = []
    for u in range(20):
        rows += [(f"u{u}", "x", 10), (f"u{u}", "y", 10), (f"u{u}", "z", 20)]
    data = training_data(rows)
    x, y, z = (data.item_ids.index(i) for i in "xyz")
    fitted = {}
    for whole in (True, False):
        params = HybridParams(seq_whole_steps=whole, seq_step=1, w_seq=1.0)
        fitted[whole] = HybridRecommender(params).fit(data).matrices().sequential
    assert abs(fitted[True][x, y]) < 1e-6
    assert fitted[False][x, y] > 0.1
    assert fitted[True][x, z] > 0.1
