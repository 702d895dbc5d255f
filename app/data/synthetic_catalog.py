"""Items and users of the synthetic shop, with the latent structure the events are drawn from.

Taste has two latent parts. Category: each (age band, gender) group has its own category
preferences and every user mixes the group's with an individual draw, so demographics predict
what a user buys. Price tier (quartile of price within a category): a user's preferred tier
grows with age and is higher on desktop and in richer countries. Items are grouped by
(category, tier); within a group they are ordered by brand so that neighbours in that order
are similar products, and each has a Zipf-like popularity weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CATEGORIES = (
    "shoes", "books", "toys", "beauty", "kitchen", "garden", "sports", "music", "games",
    "phones", "laptops", "cameras", "jewelry", "pets", "grocery", "baby", "tools", "auto",
    "office", "outdoor",
)  # fmt: skip
N_TIERS = 4
TIER_WORDS = ("basic", "classic", "premium", "luxe")
ADJECTIVES = ("red", "blue", "green", "black", "mini", "eco", "smart", "vintage", "ultra", "soft")
BRANDS_PER_CATEGORY = 5
SYLLABLES = ("ka", "lo", "mi", "ra", "to", "ve", "zu", "ne", "po", "si")
GENDERS = ("F", "M", "X")
GENDER_SHARES = (0.49, 0.47, 0.04)
COUNTRIES = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "SE", "BR")
COUNTRY_SHARES = (0.3, 0.14, 0.12, 0.1, 0.08, 0.07, 0.06, 0.05, 0.04, 0.04)
COUNTRY_WEALTH = (0.3, 0.2, 0.25, 0.15, 0.0, 0.0, 0.25, -0.2, 0.25, -0.3)
DEVICES = ("mobile", "desktop", "tablet")
DEVICE_SHARES = (0.6, 0.3, 0.1)
AGE_BAND_EDGES = (30, 45, 60)  # bands: 18-29, 30-44, 45-59, 60+
MIN_ITEMS = len(CATEGORIES) * N_TIERS
ZIPF_EXPONENT = 1.0


@dataclass
class Catalog:
    """Items in index order. ``group_items`` lists item indices grouped by (category, tier) and
    within a group by brand; ``group_start[g]``/``group_size[g]`` delimit group ``g``;
    ``group_cum_weight`` is the running ``popularity`` sum along ``group_items``."""

    table: pd.DataFrame
    popularity: np.ndarray
    group_of_item: np.ndarray
    position_in_group: np.ndarray
    group_items: np.ndarray
    group_start: np.ndarray
    group_size: np.ndarray
    group_cum_weight: np.ndarray


@dataclass
class Population:
    """Users in index order with their latent tastes."""

    table: pd.DataFrame
    category_cum_pref: np.ndarray  # [n_users, n_categories], rows end at 1.0
    preferred_tier: np.ndarray  # float in [0, N_TIERS - 1]
    activity: np.ndarray  # heavy-tailed relative activity, 0 for cold users


def make_catalog(rng: np.random.Generator, n_items: int) -> Catalog:
    """Draw ``n_items`` items (at least ``MIN_ITEMS`` so every (category, tier) is stocked)."""
    if n_items < MIN_ITEMS:
        raise ValueError(f"n_items must be at least {MIN_ITEMS}, got {n_items}")
    n_categories = len(CATEGORIES)
    category = rng.choice(n_categories, size=n_items, p=rng.dirichlet(np.full(n_categories, 3.0)))
    category[:MIN_ITEMS] = np.arange(MIN_ITEMS) % n_categories  # >= N_TIERS items per category
    brand = category * BRANDS_PER_CATEGORY + rng.integers(0, BRANDS_PER_CATEGORY, n_items)
    log_price = (
        np.log(rng.uniform(8.0, 300.0, n_categories))[category]
        + rng.normal(0.0, 0.3, n_categories * BRANDS_PER_CATEGORY)[brand]
        + rng.normal(0.0, 0.5, n_items)
    )
    price = np.maximum(np.round(np.exp(log_price), 2), 0.5)

    by_category_price = np.lexsort((price, category))
    category_size = np.bincount(category, minlength=n_categories)
    category_start = np.concatenate(([0], np.cumsum(category_size)[:-1]))
    rank = np.empty(n_items, dtype=np.int64)
    rank[by_category_price] = np.arange(n_items) - category_start[category[by_category_price]]
    tier = rank * N_TIERS // category_size[category]
    group = category * N_TIERS + tier

    popularity = 1.0 / (rng.permutation(n_items) + 1.0) ** ZIPF_EXPONENT
    group_items = np.lexsort((rng.random(n_items), brand, group))
    group_size = np.bincount(group, minlength=n_categories * N_TIERS)
    group_start = np.concatenate(([0], np.cumsum(group_size)[:-1]))
    position_in_group = np.empty(n_items, dtype=np.int64)
    position_in_group[group_items] = np.arange(n_items) - group_start[group[group_items]]

    brand_names = np.array([a + b for a in SYLLABLES for b in SYLLABLES], dtype=object)
    category_names = np.array(CATEGORIES, dtype=object)
    titles = (
        brand_names[brand]
        + " "
        + np.array(ADJECTIVES, dtype=object)[rng.integers(0, len(ADJECTIVES), n_items)]
        + " "
        + category_names[category]
        + " "
        + np.array(TIER_WORDS, dtype=object)[tier]
    )
    table = pd.DataFrame(
        {
            "item_id": _item_ids(n_items),
            "title": titles,
            "category": category_names[category],
            "brand": brand_names[brand],
            "price": price,
            "in_stock": np.where(rng.random(n_items) < 0.95, "1", "0"),
        }
    )
    return Catalog(
        table=table,
        popularity=popularity,
        group_of_item=group,
        position_in_group=position_in_group,
        group_items=group_items,
        group_start=group_start,
        group_size=group_size,
        group_cum_weight=np.cumsum(popularity[group_items]),
    )


def _item_ids(n_items: int) -> np.ndarray:
    """``sku-000123``; a few ids carry a space, slash or colon to exercise id handling."""
    index = pd.Series(np.arange(n_items))
    ids = ("sku-" + index.astype(str).str.zfill(6)).to_numpy(dtype=object)
    spaced = np.flatnonzero(index.to_numpy() % 97 == 17)
    ids[spaced] = [f"sku {i}/b" for i in spaced]
    coloned = np.flatnonzero(index.to_numpy() % 89 == 3)
    ids[coloned] = [f"SKU:{i}-x" for i in coloned]
    return ids


def make_population(rng: np.random.Generator, n_users: int, cold_user_share: float) -> Population:
    """Draw users; a ``cold_user_share`` of them get attributes but zero activity."""
    n_categories = len(CATEGORIES)
    age = np.round(rng.triangular(18, 32, 80, n_users))
    gender = rng.choice(len(GENDERS), size=n_users, p=GENDER_SHARES)
    country = rng.choice(len(COUNTRIES), size=n_users, p=COUNTRY_SHARES)
    device = rng.choice(len(DEVICES), size=n_users, p=DEVICE_SHARES)

    demographic_group = np.searchsorted(AGE_BAND_EDGES, age, side="right") * len(GENDERS) + gender
    n_groups = (len(AGE_BAND_EDGES) + 1) * len(GENDERS)
    group_pref = rng.dirichlet(np.full(n_categories, 0.4), size=n_groups)
    own_pref = rng.dirichlet(np.full(n_categories, 0.3), size=n_users)
    category_pref = 0.7 * group_pref[demographic_group] + 0.3 * own_pref
    category_cum_pref = np.cumsum(category_pref, axis=1)
    category_cum_pref /= category_cum_pref[:, -1:]

    wealth = (
        (age - 18.0) / 62.0
        + 0.4 * (device == DEVICES.index("desktop"))
        + np.asarray(COUNTRY_WEALTH)[country]
        + rng.normal(0.0, 0.3, n_users)
    )
    preferred_tier = np.clip(wealth * 2.2, 0.0, N_TIERS - 1.0)

    activity = rng.lognormal(0.0, 1.3, n_users)
    activity[rng.permutation(n_users)[: round(cold_user_share * n_users)]] = 0.0
    table = pd.DataFrame(
        {
            "user_id": ("u" + pd.Series(np.arange(n_users)).astype(str).str.zfill(7)).to_numpy(),
            "age": age,
            "gender": np.array(GENDERS, dtype=object)[gender],
            "country": np.array(COUNTRIES, dtype=object)[country],
            "device": np.array(DEVICES, dtype=object)[device],
        }
    )
    return Population(table, category_cum_pref, preferred_tier, activity)
