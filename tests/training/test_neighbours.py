"""The item neighbour index: hand-made matrices, then a model fitted on the planted shop."""

from __future__ import annotations

import numpy as np
import pytest

from app.training.hybrid import HybridParams, HybridRecommender
from app.training.neighbours import item_neighbours, model_neighbours
from app.training.types import TrainingData

# 4 items. Row i says how related each item is to i; the diagonal must never come out.
ITEM_ITEM = np.array(
    [
        [9.0, 0.5, 0.1, -0.2],
        [0.4, 9.0, 0.0, 0.3],
        [0.0, 0.0, 9.0, 0.0],
        [0.2, 0.1, 0.6, 9.0],
    ],
    dtype=np.float32,
)
TRANSITIONS = np.array(
    [
        [0.0, 0.0, 0.0, 0.5],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ],
    dtype=np.float32,
)


def test_rows_are_ranked_by_the_weighted_blend_and_padded() -> None:
    indices, scores = item_neighbours(
        ITEM_ITEM, TRANSITIONS, 3, item_item_weight=1.0, transition_weight=2.0, chunk_rows=3
    )
    assert indices.dtype == np.int32
    assert scores.dtype == np.float32
    # Item 0: 3 scores 1.0 - 0.2 = 0.8 (transition), then 1 (0.5), then 2 (0.1).
    assert indices[0].tolist() == [3, 1, 2]
    np.testing.assert_allclose(scores[0], [0.8, 0.5, 0.1], rtol=1e-6)
    # Item 1: only two positive relations; item 2: none at all.
    assert indices[1].tolist() == [0, 3, -1]
    assert scores[1, 2] == -np.inf
    assert indices[2].tolist() == [-1, -1, -1]
    assert indices[3].tolist() == [2, 0, 1]


def test_chunking_does_not_change_the_answer() -> None:
    rng = np.random.default_rng(0)
    item_item = rng.normal(size=(37, 37)).astype(np.float32)
    transitions = rng.random((37, 37)).astype(np.float32)
    whole = item_neighbours(item_item, transitions, 5, chunk_rows=1000)
    chunked = item_neighbours(item_item, transitions, 5, chunk_rows=4)
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_array_equal(whole[1], chunked[1])
    assert not (whole[0] == np.arange(37)[:, None]).any()


def test_m_wider_than_the_catalogue_is_padded() -> None:
    indices, scores = item_neighbours(ITEM_ITEM, TRANSITIONS, 6)
    assert indices.shape == scores.shape == (4, 6)
    assert (indices[:, 4:] == -1).all()


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="square"):
        item_neighbours(ITEM_ITEM, TRANSITIONS[:3], 2)
    with pytest.raises(ValueError, match="m must be"):
        item_neighbours(ITEM_ITEM, TRANSITIONS, 0)


def test_planted_items_neighbour_their_own_category_and_their_successor(
    planted_data: TrainingData,
) -> None:
    model = HybridRecommender(HybridParams(content_beta=0.1, w_trans=0.5)).fit(planted_data)
    indices, _ = model_neighbours(model, 10)
    ids = model.item_ids_
    category_items = [i for i, item in enumerate(ids) if item[0] in "ab"]
    top = indices[category_items, 0]
    assert (top >= 0).all()
    assert all(ids[t][0] == ids[i][0] for i, t in zip(category_items, top, strict=True))
    # Sessions walk k -> k+1, so an item's successor is among its few closest neighbours.
    successor_found = [
        ids.index(f"{ids[i][0]}{(int(ids[i][1:]) + 1) % 20:02d}") in indices[i, :3]
        for i in category_items
    ]
    assert np.mean(successor_found) > 0.8
