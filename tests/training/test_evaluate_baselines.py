"""Reference recommenders of the evaluation, on hand-checkable data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.training.baselines import (
    demographic_ridge_scores,
    demographics,
    ease_scores,
    one_hot_tokens,
    popularity_scores,
    segment_popularity_scores,
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
    top = matrix.top_k(popularity_scores(matrix, 2), ["f1", "new"], k=3)
    assert top == [["b", "d"], ["c", "a", "b"]]


def test_segment_popularity_prefers_the_users_segment():
    matrix = train_matrix(TRAIN, USERS, ITEMS)
    segments = (PROFILE["gender"] + "|" + PROFILE["age"]).reindex(list(USERS)).tolist()
    scores = segment_popularity_scores(matrix, segments, ["new"])
    # "new" is F|20s like f1 and f2: a and c tie at 2, global popularity puts c first.
    assert matrix.top_k(scores, ["new"], k=3) == [["c", "a", "b"]]


def test_segment_popularity_falls_back_to_global_without_a_segment():
    matrix = train_matrix(TRAIN, USERS, ITEMS)
    scores = segment_popularity_scores(matrix, [None] * len(USERS), ["new"])
    assert matrix.top_k(scores, ["new"], k=3) == [["c", "a", "b"]]


def test_ease_recommends_co_occurring_items():
    partial = pd.concat([TRAIN, pd.DataFrame({"user_id": ["new"], "item_id": ["a"]})])
    matrix = train_matrix(partial, USERS, ITEMS)
    top = matrix.top_k(ease_scores(matrix, ["new"], l2=0.5), ["new"], k=1)
    assert top == [["c"]]  # a co-occurs only with c


def test_demographic_ridge_ranks_the_groups_item_first_for_a_cold_user():
    matrix = train_matrix(TRAIN, USERS, ITEMS)
    tokens = one_hot_tokens(PROFILE, USERS)
    assert tokens.shape[0] == len(USERS)
    assert tokens[4].nnz == 2  # gender=F, age=20s
    scores = demographic_ridge_scores(matrix, tokens, ["new"], l2=0.1)
    ranked = matrix.top_k(scores, ["new"], k=4)[0]
    assert ranked.index("a") < ranked.index("b")
