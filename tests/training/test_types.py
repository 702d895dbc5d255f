from __future__ import annotations

import pandas as pd
import pytest

from app.data.types import Dataset
from app.training.types import training_data_from


def dataset(rows: list[tuple[str, str, int]], catalogue: tuple[str, ...] = ()) -> Dataset:
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    interactions["event_type"] = "view"
    interactions["value"] = 1.0
    items = pd.DataFrame({"item_id": list(catalogue)})
    return Dataset(interactions=interactions, users=pd.DataFrame({"user_id": []}), items=items)


def test_histories_are_distinct_items_by_last_interaction_oldest_first() -> None:
    rows = [("u", "x", 1), ("u", "y", 2), ("u", "x", 3), ("u", "z", 3), ("v", "y", 5)]
    data = training_data_from(dataset(rows), {}, {})
    x, y, z = (data.item_ids.index(i) for i in "xyz")
    histories = data.histories(max_items=10)
    # x was last seen at 3, tied with z; ties go to the smaller item id.
    assert histories[0].tolist() == [y, x, z]
    assert histories[1].tolist() == [y]
    assert [h.tolist() for h in data.histories(max_items=2)] == [[x, z], [y]]


def test_indexes_catalogue_items_never_interacted_with_and_tokens() -> None:
    data = training_data_from(
        dataset([("u", "x", 1)], catalogue=("x", "never")),
        {"u": ["gender=F"], "ghost": ["gender=M"]},
        {"never": ["category=a"], "x": ["category=a", "brand=b"]},
    )
    assert data.item_ids == ("never", "x")
    assert data.tokens == ("gender=F",)
    assert data.item_token_names == ("brand=b", "category=a")
    assert data.item_tokens.toarray().tolist() == [[0, 1], [1, 1]]
    assert data.interaction_matrix().toarray().tolist() == [[0, 1]]
    assert [t.tolist() for t in data.user_token_lists()] == [[0]]


def test_interaction_matrix_is_binary_despite_repeats() -> None:
    data = training_data_from(dataset([("u", "x", 1), ("u", "x", 2)]), {}, {})
    assert data.interaction_matrix().toarray().tolist() == [[1.0]]


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="empty"):
        training_data_from(dataset([]), {}, {})
    with pytest.raises(ValueError, match="'u'"):
        training_data_from(dataset([("u", "x", 1)]), {"u": [""]}, {})
    frame = dataset([("u", "x", 1)])
    frame.interactions = frame.interactions.drop(columns=["timestamp"])
    with pytest.raises(ValueError, match="timestamp"):
        training_data_from(frame, {}, {})
