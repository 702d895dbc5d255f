"""The catalogue written beside a model, from the item tables of different sources."""

from __future__ import annotations

import math

import orjson
import pandas as pd

from app.training.catalogue import catalogue_items, catalogue_json


def test_shop_items_keep_title_category_price_and_stock() -> None:
    items = pd.DataFrame(
        {
            "item_id": ["a", "b"],
            "title": [["red", "shoe"], None],
            "category": ["shoes", None],
            "price": [9.5, math.nan],
            "in_stock": ["1", "0"],
            "image_url": ["https://x/a.png", ""],
        }
    )
    a, b = catalogue_items(items)
    assert (a.title, a.categories, a.price, a.in_stock, a.hidden) == (
        "red shoe",
        ["shoes"],
        9.5,
        True,
        False,
    )
    assert a.image_url == "https://x/a.png"
    assert (b.title, b.categories, b.price, b.in_stock, b.image_url) == ("b", [], None, False, None)
    assert orjson.loads(catalogue_json(items))[0]["title"] == "red shoe"


def test_movielens_items_use_movie_title_and_genres() -> None:
    items = pd.DataFrame(
        {
            "item_id": ["1"],
            "movie_title": [["Toy", "Story"]],
            "release_year": ["1995"],
            "class": [["Animation", "Comedy"]],
        }
    )
    (movie,) = catalogue_items(items)
    assert movie.title == "Toy Story"
    assert movie.categories == ["Animation", "Comedy"]
    assert movie.price is None
    assert movie.in_stock is True
