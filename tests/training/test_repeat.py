"""The repeat model: how frequency, recency, quantity, repurchase propensity and cycles
order a user's rebuys, and what validation decides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.training.repeat import (
    Purchases,
    RepeatParams,
    held_out,
    pair_scores,
    pair_stats,
    purchases_from,
    repeat_matrix,
)
from app.training.repeat_tuning import tune_repeat

DAY = 86_400


def _purchases(rows: list[tuple[str, str, float, float]]) -> Purchases:
    """(user, item, day, quantity) rows over the vocabularies they name."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "day", "quantity"])
    frame["timestamp"] = (frame.pop("day") * DAY).astype(np.int64)
    users = tuple(sorted(set(frame["user_id"])))
    items = tuple(sorted(set(frame["item_id"])))
    return purchases_from(frame, users, items)


def _ranking(purchases: Purchases, params: RepeatParams, user: int = 0) -> list[int]:
    indptr, items, _ = repeat_matrix(purchases, params, per_user=10)
    return items[indptr[user] : indptr[user + 1]].tolist()


def test_frequency_ranks_the_most_bought_item_first() -> None:
    # Items a=0, b=1: a bought three times, b once (most recently).
    p = _purchases([("u", "a", 1, 1), ("u", "a", 2, 1), ("u", "a", 3, 1), ("u", "b", 4, 1)])
    assert _ranking(p, RepeatParams()) == [0, 1]
    _, _, scores = repeat_matrix(p, RepeatParams(), per_user=10)
    assert scores.tolist() == pytest.approx([1.0, 1 / 3])  # normalised by the user's best


def test_a_short_half_life_prefers_recent_purchases_over_old_frequent_ones() -> None:
    rows = [("u", "a", d, 1.0) for d in (0, 1, 2)] + [("u", "b", d, 1.0) for d in (100, 101)]
    p = _purchases(rows)
    assert _ranking(p, RepeatParams(half_life_days=None)) == [0, 1]
    assert _ranking(p, RepeatParams(half_life_days=15.0)) == [1, 0]


def test_quantity_weighting_counts_units_not_lines() -> None:
    p = _purchases([("u", "a", 1, 1.0), ("u", "a", 2, 1.0), ("u", "b", 3, 12.0)])
    assert _ranking(p, RepeatParams()) == [0, 1]
    assert _ranking(p, RepeatParams(quantity_weighted=True)) == [1, 0]


def test_items_others_rebuy_rank_above_items_nobody_rebuys() -> None:
    # u bought a and b once each; other users rebuy b often and never rebuy a.
    rows = [("u", "a", 1, 1.0), ("u", "b", 1, 1.0)]
    for other in ("v", "w", "x"):
        rows += [(other, "a", 1, 1.0), (other, "b", 1, 1.0), (other, "b", 5, 1.0)]
    p = _purchases(rows)
    user = 0  # "u" sorts first
    assert _ranking(p, RepeatParams(), user) == [0, 1]  # a tie: item index order
    assert _ranking(p, RepeatParams(propensity_power=1.0), user) == [1, 0]


def test_an_item_due_by_its_repurchase_cycle_ranks_higher() -> None:
    # Others rebuy "weekly" every 7 days and "monthly" every 30 days. u bought both once,
    # 7 days before their last purchase: weekly is due, monthly is not.
    rows = [("u", "monthly", 0, 1.0), ("u", "weekly", 0, 1.0), ("u", "other", 7, 1.0)]
    for other in ("v", "w"):
        rows += [(other, "weekly", d, 1.0) for d in (0, 7, 14)]
        rows += [(other, "monthly", d, 1.0) for d in (0, 30, 60)]
    p = _purchases(rows)
    stats = pair_stats(p)
    cycles = dict(zip(stats.item.tolist(), (stats.cycle / DAY).tolist(), strict=True))
    assert cycles[0] == pytest.approx(30.0)  # monthly
    assert cycles[2] == pytest.approx(7.0)  # weekly
    plain = _ranking(p, RepeatParams(), user=0)
    due = _ranking(p, RepeatParams(due_weight=1.0), user=0)
    assert plain.index(2) > plain.index(0)  # ties broken by item index: monthly first
    assert due.index(2) < due.index(0)  # weekly is due and comes first


def test_lines_of_one_basket_are_one_purchase_occasion() -> None:
    # Two lines of the same item in one basket (one timestamp) are not a rebuy.
    p = _purchases([("u", "a", 1, 1.0), ("u", "a", 1, 2.0), ("v", "a", 1, 1.0)])
    stats = pair_stats(p)
    assert stats.propensity.tolist() == pytest.approx([1 / 4, 1 / 4])  # (0 + 1) / (2 + 2)
    assert np.isnan(stats.cycle).all()
    scores = pair_scores(stats, RepeatParams())
    assert scores.tolist() == [1.0, 1.0]


def test_held_out_takes_each_users_last_fifth() -> None:
    rows = [("u", f"i{d}", d, 1.0) for d in range(10)] + [("v", "i0", 0, 1.0)]
    p = _purchases(rows)
    mask = held_out(p, 0.2)
    assert mask.tolist() == [False] * 8 + [True, True] + [True]


def _shop(rebuy: bool, seed: int = 0) -> Purchases:
    """Users with favourite items; with ``rebuy`` they buy them again and again, without it
    every purchase is of a new item."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(120):
        favourites = rng.choice(200, size=8, replace=False)
        fresh = iter(rng.permutation(200))
        for day in range(30):
            item = rng.choice(favourites) if rebuy else next(fresh)
            rows.append((f"u{user:03d}", f"i{item:03d}", float(day), 1.0))
    return _purchases(rows)


def test_validation_keeps_repeats_on_where_users_rebuy_and_off_where_nobody_does() -> None:
    params, tuning = tune_repeat(_shop(rebuy=True))
    assert params.exploration_weight is not None
    assert tuning.blend_ndcg >= tuning.exploration_only_ndcg
    assert tuning.repeats_only_ndcg > 0.5
    params, tuning = tune_repeat(_shop(rebuy=False))
    assert params.exploration_weight is None
    assert tuning.repeats_only_ndcg == 0.0


def test_rows_keep_each_users_best_per_user_items() -> None:
    p = _shop(rebuy=True)
    indptr, items, scores = repeat_matrix(p, RepeatParams(), per_user=3)
    assert np.diff(indptr).max() == 3
    for user in range(p.n_users):
        row = scores[indptr[user] : indptr[user + 1]]
        assert row[0] == 1.0
        assert (np.diff(row) <= 0).all()
    assert items.dtype == np.int32
