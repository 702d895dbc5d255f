"""A tiny shop with planted structure, for the model tests.

60 items in 3 categories of 20. Women browse category ``a``, men category ``b``; a session
walks forward through its category (item k is usually followed by item k+1), so the next item
is predictable from the last ones. Everyone also touches a few globally popular ``c`` items,
which is all a popularity ranking can learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from app.data.types import Dataset
from app.training.types import TrainingData, training_data_from

ITEMS_PER_CATEGORY = 20
CATEGORIES = ("a", "b", "c")


@dataclass(frozen=True)
class PlantedShop:
    dataset: Dataset
    user_tokens: dict[str, list[str]]
    item_tokens: dict[str, list[str]]

    def training_data(self) -> TrainingData:
        return training_data_from(self.dataset, self.user_tokens, self.item_tokens)


def item_id(category: str, k: int) -> str:
    return f"{category}{k:02d}"


def make_planted_shop(n_users: int = 200, seed: int = 0) -> PlantedShop:
    rng = np.random.default_rng(seed)
    rows = []
    user_tokens = {}
    for u in range(n_users):
        user = f"u{u:03d}"
        gender = "F" if u % 2 == 0 else "M"
        user_tokens[user] = [f"gender={gender}", f"age={20 + 10 * (u % 3)}s"]
        category = "a" if gender == "F" else "b"
        position = int(rng.integers(ITEMS_PER_CATEGORY))
        clock = 1_700_000_000 + int(rng.integers(10_000))
        for step in range(int(rng.integers(8, 16))):
            if step % 4 == 3:
                item = item_id("c", int(rng.integers(3)))  # the popular items
            else:
                item = item_id(category, position % ITEMS_PER_CATEGORY)
                position += 1 if rng.random() < 0.85 else int(rng.integers(2, 6))
            clock += int(rng.integers(60, 600))
            rows.append((user, item, clock, "view", 1.0))
    interactions = pd.DataFrame(
        rows, columns=["user_id", "item_id", "timestamp", "event_type", "value"]
    )
    all_items = [item_id(c, k) for c in CATEGORIES for k in range(ITEMS_PER_CATEGORY)]
    items = pd.DataFrame({"item_id": all_items, "category": [i[0] for i in all_items]})
    users = pd.DataFrame({"user_id": list(user_tokens)})
    return PlantedShop(
        dataset=Dataset(interactions=interactions, users=users, items=items),
        user_tokens=user_tokens,
        item_tokens={i: [f"category={i[0]}"] for i in all_items},
    )


@pytest.fixture(scope="session")
def planted_shop() -> PlantedShop:
    return make_planted_shop()


@pytest.fixture(scope="session")
def planted_data(planted_shop: PlantedShop) -> TrainingData:
    return planted_shop.training_data()
