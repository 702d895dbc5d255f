from __future__ import annotations

import pandas as pd
import pytest

from app.data.types import Dataset
from app.training.popularity import SECONDS_PER_DAY, PopularityModel
from app.training.types import training_data_from

DAY = SECONDS_PER_DAY


def data() -> Dataset:
    rows = [
        ("u1", "old", 0),
        ("u2", "old", 0),
        ("u3", "old", 0),
        ("u1", "new", 100 * DAY),
        ("u2", "new", 100 * DAY),
        ("u1", "new", 100 * DAY + 1),  # a repeat by the same user counts once
        ("u3", "rare", 50 * DAY),
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    items = pd.DataFrame({"item_id": ["old", "new", "rare", "unused"]})
    return Dataset(frame, pd.DataFrame(), items)


def test_counts_distinct_users_and_skips_items_nobody_used() -> None:
    training = training_data_from(data(), {}, {})
    model = PopularityModel().fit(training)
    names = [training.item_ids[i] for i in model.top_items()]
    assert names == ["old", "new", "rare"]
    prior = model.prior()
    assert prior[training.item_ids.index("old")] == pytest.approx(1.0)
    assert prior[training.item_ids.index("unused")] == 0.0


def test_recency_weighting_prefers_recent_items() -> None:
    training = training_data_from(data(), {}, {})
    model = PopularityModel(half_life_days=10).fit(training)
    assert [training.item_ids[i] for i in model.top_items(2)] == ["new", "rare"]


def test_unfitted_model_says_so() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        PopularityModel().prior()
