"""What the learned repeat scorer knows about each (user, item) pair a user bought.

Every time is measured back from the user's own last purchase, and every count of baskets
back from the user's last basket (a basket: the lines of one timestamp), so a shopper of any
period, and a training window one split earlier than the served one, read the same. Rows come
in ``pair_stats`` order (by user, then item index) so scores line up with its pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.training.repeat import SECONDS_PER_DAY, PairStats, Purchases

# Recency-weighted purchase counts at these half-lives (days): a weekly staple and a
# seasonal buy look alike in a plain count and differ here.
HALF_LIVES_DAYS = (7.0, 30.0, 120.0, 365.0)
# Purchases within the user's last N baskets: next-basket studies' strongest signal.
LAST_BASKETS = (1, 3, 5, 10, 20)

FEATURE_NAMES = (
    "occasions",
    "quantity",
    *(f"decayed_{int(h)}d" for h in HALF_LIVES_DAYS),
    *(f"in_last_{n}_baskets" for n in LAST_BASKETS),
    "days_since_last",
    "days_first_to_last",
    "own_interval_days",
    "since_last_over_own_interval",
    "baskets_since_last",
    "share_of_baskets",
    "user_baskets",
    "user_days",
    "user_days_per_basket",
    "user_distinct_items",
    "item_propensity",
    "item_cycle_days",
    "since_last_over_item_cycle",
    "item_buyers_log",
    "item_occasions_log",
)


def pair_features(purchases: Purchases, stats: PairStats) -> np.ndarray:
    """One row of ``FEATURE_NAMES`` per pair of ``stats`` (computed from ``purchases``)."""
    p = purchases
    lines = pd.DataFrame({"user": p.user, "item": p.item, "time": p.time, "quantity": p.quantity})
    baskets = lines[["user", "time"]].drop_duplicates()
    basket_count = baskets.groupby("user").size()
    first_time = baskets.groupby("user")["time"].min()
    last_time = baskets.groupby("user")["time"].max()
    # Baskets back from the user's last one (0 = the last basket).
    baskets_back = (
        basket_count.reindex(baskets["user"]).to_numpy()
        - 1
        - baskets.groupby("user").cumcount().to_numpy()
    )
    baskets = baskets.assign(back=baskets_back)
    occasions = lines.drop_duplicates(["user", "item", "time"]).merge(baskets, on=["user", "time"])
    age_days = (last_time.reindex(occasions["user"]).to_numpy() - occasions["time"]) / (
        SECONDS_PER_DAY
    )
    counted = {
        **{f"decayed_{int(h)}d": np.exp2(-age_days / h) for h in HALF_LIVES_DAYS},
        **{f"in_last_{n}_baskets": (occasions["back"] < n).astype(float) for n in LAST_BASKETS},
    }
    grouped = occasions.assign(**counted).groupby(["user", "item"], sort=True)
    pairs = grouped[list(counted)].sum()
    pairs["occasions"] = grouped.size()
    pairs["last"] = grouped["time"].max()  # for the first-to-last span
    pairs["first"] = grouped["time"].min()
    pairs["baskets_since_last"] = grouped["back"].min()
    pairs["quantity"] = lines.groupby(["user", "item"], sort=True)["quantity"].sum()
    pairs = pairs.reset_index()
    if not (
        np.array_equal(pairs["user"].to_numpy(), stats.user)
        and np.array_equal(pairs["item"].to_numpy(), stats.item)
    ):
        raise ValueError("pair features and pair statistics disagree on the pairs")

    user = pairs["user"]
    user_baskets = basket_count.reindex(user).to_numpy().astype(float)
    user_days = (last_time - first_time).reindex(user).to_numpy() / SECONDS_PER_DAY
    occasions_of_pair = pairs["occasions"].to_numpy().astype(float)
    since_last = stats.elapsed / SECONDS_PER_DAY
    first_to_last = (pairs["last"] - pairs["first"]).to_numpy() / SECONDS_PER_DAY
    with np.errstate(invalid="ignore", divide="ignore"):
        own_interval = np.where(
            occasions_of_pair > 1, first_to_last / (occasions_of_pair - 1), np.nan
        )
        cycle_days = stats.cycle / SECONDS_PER_DAY
        columns = {
            "days_since_last": since_last,
            "days_first_to_last": first_to_last,
            "own_interval_days": own_interval,
            "since_last_over_own_interval": since_last / own_interval,
            "share_of_baskets": occasions_of_pair / user_baskets,
            "user_baskets": user_baskets,
            "user_days": user_days,
            "user_days_per_basket": user_days / np.maximum(user_baskets - 1, 1),
            "user_distinct_items": pairs.groupby("user")["item"].transform("size").to_numpy(),
            "item_propensity": stats.propensity,
            "item_cycle_days": cycle_days,
            "since_last_over_item_cycle": since_last / cycle_days,
            "item_buyers_log": np.log1p(pairs.groupby("item")["user"].transform("size")),
            "item_occasions_log": np.log1p(pairs.groupby("item")["occasions"].transform("sum")),
        }
    table = pairs.assign(**columns)
    return table[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
