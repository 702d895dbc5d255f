"""Reference recommenders of the evaluation, on hand-checkable data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.training.baselines import (
    demographic_ridge,
    demographics,
    ease,
    ease_name,
    one_hot_tokens,
    popularity,
    segment_popularity,
    train_matrix,
)

USERS = ("f1", "f2", "m1", "m2", "new")
ITEMS = ("a", "b", "c", "d")
# Women take a and c, men b and c; c is the most popular overall.
TRAIN = pd.DataFrame(
    {
        "user_id": ["f1", "f1", "f2", "f2", "m1", "m1", "m2", "m2", "m2"],
        "item_id": ["a", "c", "a", "c", "b", "c", "b", "c", "c"],
    }
)
PROFILE = demographics(
    pd.DataFrame(
        {
            "user_id": list(USERS),
            "gender": ["F", "F", "M", "M", "F"],
            "age": ["24", "29", "31", "35.0", "22"],
            "zip": ["1", "2", "3", "4", "5"],
        }
    )
)


def test_demographics_keep_gender_and_age_decade_only():
    assert list(PROFILE.columns) == ["gender", "age"]
    assert PROFILE.loc["m2", "age"] == "30s"
    assert PROFILE.loc["f1", "age"] == "20s"


def test_popularity_excludes_train_items_and_breaks_ties_by_index():
    matrix = train_matrix(TRAIN, USERS, ITEMS)
    np.testing.assert_array_equal(matrix.popularity(), [2, 2, 4, 0])  # m2's repeat counts once
    top = matrix.top_k(popularity(matrix), ["f1", "new"], k=3)
    assert top == [["b", "d"], ["c", "a", "b"]]


def test_segment_popularity_prefers_the_users_segment():
    matrix = train_matrix(TRAIN, USERS, ITEMS)
    segments = (PROFILE["gender"] + "|" + PROFILE["age"]).reindex(list(USERS)).tolist()
    scorer = segment_popularity(matrix, segments)
    # "new" is F|20s like f1 and f2: a and c tie at 2, global popularity puts c first.
    assert matrix.top_k(scorer, ["new"], k=3) == [["c", "a", "b"]]


def test_segment_popularity_falls_back_to_global_without_a_segment():
    matrix = train_matrix(TRAIN, USERS, ITEMS)
    scorer = segment_popularity(matrix, [None] * len(USERS))
    assert matrix.top_k(scorer, ["new"], k=3) == [["c", "a", "b"]]


def test_ease_recommends_co_occurring_items():
    partial = pd.concat([TRAIN, pd.DataFrame({"user_id": ["new"], "item_id": ["a"]})])
    matrix = train_matrix(partial, USERS, ITEMS)
    top = matrix.top_k(ease(matrix, l2=0.5), ["new"], k=1)
    assert top == [["c"]]  # a co-occurs only with c
    assert ease_name(matrix) == "EASE λ=250"


def test_ease_on_a_large_catalogue_ranks_only_the_most_popular_items():
    partial = pd.concat([TRAIN, pd.DataFrame({"user_id": ["new"], "item_id": ["a"]})])
    matrix = train_matrix(partial, USERS, ITEMS)
    # a (3 users) and c (4) are kept; b (2) and d (0) are outside the fitted catalogue.
    top = matrix.top_k(ease(matrix, l2=0.5, max_items=2), ["new", "m1"], k=4)
    assert top == [["c"], ["a"]]
    assert ease_name(matrix, max_items=2) == "EASE λ=250 (top 2 items)"


def test_top_k_asks_for_bounded_blocks_and_ranks_as_one_block():
    matrix = train_matrix(TRAIN, USERS, ITEMS)
    whole = popularity(matrix)
    blocks: list[int] = []

    def scorer(rows: np.ndarray) -> np.ndarray:
        blocks.append(len(rows))
        return whole(rows)

    users = list(USERS)
    # 9 cells at 4 items a row: 2 users per block.
    assert matrix.top_k(scorer, users, k=2, block_cells=9) == matrix.top_k(whole, users, k=2)
    assert blocks == [2, 2, 1]


def test_demographic_ridge_ranks_the_groups_item_first_for_a_cold_user():
    matrix = train_matrix(TRAIN, USERS, ITEMS)
    tokens = one_hot_tokens(PROFILE, USERS)
    assert tokens.shape[0] == len(USERS)
    assert tokens[4].nnz == 2  # gender=F, age=20s
    ranked = matrix.top_k(demographic_ridge(matrix, tokens, l2=0.1), ["new"], k=4)[0]
    assert ranked.index("a") < ranked.index("b")
