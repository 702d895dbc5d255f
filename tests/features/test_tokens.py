from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from app.data.types import FieldType
from app.features.tokens import attribute_tokens, fit_quantile_edges


def test_user_tokens_follow_each_field_rule(dataset):
    tokens = attribute_tokens(dataset.users, dataset.user_fields, "user_id")

    assert tokens.by_id() == {
        "u1": ("age=20s", "gender=F", "income=q1", "hobbies=chess", "hobbies=go"),
        "u2": ("gender=M", "income=q5"),  # blank age, empty list: no token
        "u3": ("age=60s", "hobbies=chess"),  # blank gender, NaN income: no token
    }
    assert tokens.quantile_edges == {"income": (18.0, 26.0, 34.0, 42.0)}


def test_float_age_gets_decades_and_no_quantiles():
    users = pd.DataFrame({"user_id": ["a", "b", "c"], "age": [9.0, 30.0, 119.5]})

    tokens = attribute_tokens(users, {"age": FieldType.FLOAT}, "user_id")

    assert tokens.by_row == (("age=0s",), ("age=30s",), ("age=110s",))
    assert tokens.quantile_edges == {}


def test_quintiles_cover_five_buckets_and_edges_fall_low():
    table = pd.DataFrame({"item_id": [str(i) for i in range(10)], "price": np.arange(10.0)})
    fields = {"price": FieldType.FLOAT}

    tokens = attribute_tokens(table, fields, "item_id")

    assert [row[0] for row in tokens.by_row] == [
        f"price=q{b}" for b in (1, 1, 2, 2, 3, 3, 4, 4, 5, 5)
    ]
    at_edge = pd.DataFrame({"item_id": ["x"], "price": [tokens.quantile_edges["price"][0]]})
    assert attribute_tokens(
        at_edge, fields, "item_id", quantile_edges=tokens.quantile_edges
    ).by_row == (("price=q1",),)


def test_given_edges_are_reused_not_refitted():
    """Serving-time or later tables must bucket with the training table's edges."""
    edges = fit_quantile_edges(
        pd.DataFrame({"income": [1.0, 2.0, 3.0, 4.0, 5.0]}), {"income": FieldType.FLOAT}
    )
    later = pd.DataFrame({"user_id": ["new"], "income": [100.0]})

    tokens = attribute_tokens(later, {"income": FieldType.FLOAT}, "user_id", quantile_edges=edges)

    assert tokens.by_row == (("income=q5",),)
    assert tokens.quantile_edges == edges


def test_sequences_split_strip_and_drop_repeats_and_blanks():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "genre": [["Drama", " War ", "Drama", ""], "Comedy Romance", None, math.nan],
        }
    )

    tokens = attribute_tokens(items, {"genre": FieldType.TOKEN_SEQ}, "item_id")

    assert tokens.by_row == (
        ("genre=Drama", "genre=War"),
        ("genre=Comedy", "genre=Romance"),
        (),
        (),
    )


def test_ids_and_float_vectors_never_become_tokens():
    items = pd.DataFrame({"item_id": ["a"], "user_id": ["u9"], "embedding": [[0.1, 0.2]]})
    fields = {"user_id": FieldType.TOKEN, "embedding": FieldType.FLOAT_SEQ}

    assert attribute_tokens(items, fields, "item_id").by_row == ((),)


def test_column_without_a_field_type_is_an_error():
    users = pd.DataFrame({"user_id": ["a"], "mystery": ["x"]})

    with pytest.raises(ValueError, match="mystery"):
        attribute_tokens(users, {}, "user_id")


def test_declared_field_missing_from_table_is_an_error():
    with pytest.raises(ValueError, match="gender"):
        attribute_tokens(pd.DataFrame({"user_id": ["a"]}), {"gender": FieldType.TOKEN}, "user_id")


def test_an_age_neither_years_nor_a_band_names_the_user():
    users = pd.DataFrame({"user_id": ["a", "b"], "age": ["30", "old"]})

    with pytest.raises(ValueError, match=r"age of 'b': invalid age: 'old'"):
        attribute_tokens(users, {"age": FieldType.TOKEN}, "user_id")


def test_an_age_band_is_its_own_token_and_years_give_the_decade():
    users = pd.DataFrame({"user_id": ["a", "b", "c"], "age": ["45 - 54", "65+", "37"]})

    tokens = attribute_tokens(users, {"age": FieldType.TOKEN}, "user_id")

    assert tokens.by_row == (("age=45-54",), ("age=65+",), ("age=30s",))
