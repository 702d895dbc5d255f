"""A small hand-built ``Dataset`` whose every feature value is worked out in the tests.

Users: u1 (attributes + interactions), u2 and u3 (attributes only), u4 (interactions only).
Items: i1..i4 in the catalogue (i4 without category), i9 interacted but not catalogued.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd

from app.data.types import Dataset, FieldType

AS_OF = datetime(2024, 1, 31, tzinfo=UTC)
A = int(AS_OF.timestamp())
DAY = 86_400


def make_dataset() -> Dataset:
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "age": ["24", "", "67"],
            "gender": ["F", "M", ""],
            "income": [10.0, 50.0, math.nan],
            "hobbies": [["chess", "go"], [], ["chess"]],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3", "i4"],
            "category": ["books", "music", "books", ""],
            "price": [5.0, 15.0, 25.0, math.nan],
        }
    )
    rows = [
        ("u1", "i1", A - 40 * DAY, "view", 1.0),
        ("u1", "i2", A - 20 * DAY, "click", 1.0),
        ("u1", "i1", A - 10 * DAY, "purchase", 20.0),
        ("u1", "i3", A - 10 * DAY, "view", 1.0),
        ("u1", "i2", A + 1 * DAY, "purchase", 7.5),  # after as_of: left out
        ("u4", "i9", A - 5 * DAY, "purchase", 5.0),
        ("u4", "i9", A - 2 * DAY, "view", 1.0),
        ("u4", "i4", A - 1 * DAY, "view", 1.0),
    ]
    interactions = pd.DataFrame(
        rows, columns=["user_id", "item_id", "timestamp", "event_type", "value"]
    ).astype({"timestamp": "int64"})
    return Dataset(
        interactions=interactions,
        users=users,
        items=items,
        user_fields={
            "age": FieldType.TOKEN,
            "gender": FieldType.TOKEN,
            "income": FieldType.FLOAT,
            "hobbies": FieldType.TOKEN_SEQ,
        },
        item_fields={"category": FieldType.TOKEN, "price": FieldType.FLOAT},
    )
