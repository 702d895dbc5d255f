from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.data.ingest import ingest, load_dataset
from app.data.synthetic import generate_shop
from app.data.types import Dataset

N_USERS, N_ITEMS, N_EVENTS = 2000, 800, 60_000


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_shop(tmp_path_factory.mktemp("gen"), seed=7)


@pytest.fixture(scope="module")
def shop(shop_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    data_dir = tmp_path_factory.mktemp("ingested") / "data"
    report = ingest(shop_dir, data_dir)
    assert report.quarantined == 0, report.format()
    return load_dataset(data_dir)


@pytest.fixture(scope="module")
def events(shop: Dataset) -> pd.DataFrame:
    """Interactions joined with item and user attributes, plus the user's age band."""
    joined = shop.interactions.merge(shop.items, on="item_id").merge(shop.users, on="user_id")
    joined["band"] = np.searchsorted([30, 45, 60], joined["age"], side="right")
    joined["group"] = joined["band"].astype(str) + joined["gender"]
    return joined


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    def files(folder: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}

    kwargs = {"n_users": 300, "n_items": 200, "n_events": 3000}
    first = files(generate_shop(tmp_path / "a", seed=1, **kwargs))
    assert list(first) == ["shop.inter", "shop.item", "shop.user"]
    assert first == files(generate_shop(tmp_path / "b", seed=1, **kwargs))
    assert (
        first["shop.inter"] != files(generate_shop(tmp_path / "c", seed=2, **kwargs))["shop.inter"]
    )


def test_files_have_the_documented_shape(shop_dir: Path, shop: Dataset) -> None:
    headers = {p.suffix: p.open().readline().split() for p in shop_dir.iterdir()}
    assert headers[".item"] == [
        "item_id:token", "title:token_seq", "category:token", "brand:token", "price:float",
        "in_stock:token",
    ]  # fmt: skip
    assert headers[".user"] == [
        "user_id:token",
        "age:float",
        "gender:token",
        "country:token",
        "device:token",
    ]
    assert (len(shop.interactions), len(shop.users), len(shop.items)) == (
        N_EVENTS, N_USERS, N_ITEMS,
    )  # fmt: skip
    assert "sku 17/b" in set(shop.items["item_id"])  # ids with a space and punctuation
    assert shop.items["category"].nunique() == 20
    assert shop.users["age"].between(18, 80).all()
    assert set(shop.users["gender"]) == {"F", "M", "X"}
    assert (shop.items["in_stock"] == "1").mean() > 0.9


def test_timestamps_span_half_a_year_in_the_past(shop: Dataset) -> None:
    timestamps = shop.interactions["timestamp"]
    span_days = (timestamps.max() - timestamps.min()) / 86_400
    assert 170 < span_days <= 181
    assert timestamps.max() < pd.Timestamp.now(tz="UTC").timestamp()


def test_cold_users_have_attributes_but_no_events(shop: Dataset) -> None:
    without_events = N_USERS - shop.interactions["user_id"].nunique()
    # 5% are cold by construction; a few more lose their only session when trimming to n_events.
    assert 0.05 * N_USERS <= without_events <= 0.1 * N_USERS


def test_popularity_and_activity_are_heavy_tailed(shop: Dataset) -> None:
    item_counts = shop.interactions["item_id"].value_counts()
    assert item_counts.iloc[: N_ITEMS // 10].sum() / N_EVENTS > 0.3  # top 10% items
    user_counts = shop.interactions["user_id"].value_counts()
    assert user_counts.max() > 10 * user_counts.median()


def test_funnel_narrows_and_values_are_prices(events: pd.DataFrame) -> None:
    counts = events["event_type"].value_counts()
    assert counts["view"] > counts["click"] > counts["add_to_cart"] > counts["purchase"] > 0
    paid = events[events["event_type"].isin(["add_to_cart", "purchase"])]
    assert np.allclose(paid["value"], paid["price"])
    assert (events.loc[events["event_type"] == "view", "value"] == 1.0).all()


def category_shift_between_bands(events: pd.DataFrame, band: pd.Series) -> float:
    """Mean total-variation distance of each age band's category mix from the overall mix."""
    mix = pd.crosstab(band, events["category"], normalize="index")
    overall = events["category"].value_counts(normalize=True)
    return float((mix - overall).abs().sum(axis=1).mean() / 2)


def test_age_band_predicts_category_far_beyond_chance(events: pd.DataFrame) -> None:
    observed = category_shift_between_bands(events, events["band"])
    rng = np.random.default_rng(0)
    band_of_user = events.groupby("user_id")["band"].first()
    shuffled = pd.Series(rng.permutation(band_of_user.to_numpy()), index=band_of_user.index)
    chance = category_shift_between_bands(events, events["user_id"].map(shuffled))
    assert observed > 2 * chance


def test_demographic_popularity_beats_global_popularity_for_new_users(
    events: pd.DataFrame,
) -> None:
    held_out = events["user_id"].str[-1].isin(["0", "1", "2"])
    train, test = events[~held_out], events[held_out]
    top_overall = set(train["item_id"].value_counts().index[:10])
    top_by_group = train.groupby("group")["item_id"].agg(lambda i: set(i.value_counts().index[:10]))
    per_user = test.groupby("user_id").agg(items=("item_id", set), group=("group", "first"))
    overall_hits = per_user["items"].map(lambda items: bool(items & top_overall)).mean()
    group_hits = np.mean(
        [
            bool(items & top_by_group[group])
            for items, group in zip(per_user["items"], per_user["group"], strict=True)
        ]
    )
    assert group_hits > overall_hits + 0.05


def test_next_item_is_predictable_from_the_previous_one(shop: Dataset) -> None:
    views = shop.interactions[shop.interactions["event_type"] == "view"]
    following = views.groupby("user_id")["item_id"].shift(-1)
    pairs = pd.DataFrame({"item": views["item_id"], "next": following}).dropna()
    train, test = pairs.iloc[: len(pairs) // 2], pairs.iloc[len(pairs) // 2 :]
    top_next = train.groupby("item")["next"].agg(lambda n: set(n.value_counts().index[:10]))
    popular = set(train["next"].value_counts().index[:10])
    transition_hits = np.mean(
        [
            following in top_next.get(item, popular)
            for item, following in zip(test["item"], test["next"], strict=True)
        ]
    )
    popularity_hits = test["next"].isin(popular).mean()
    assert transition_hits > 3 * popularity_hits


def test_too_small_catalogue_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_items must be at least 80"):
        generate_shop(tmp_path, n_items=10)
