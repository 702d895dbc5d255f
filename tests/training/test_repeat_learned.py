"""The learned repeat scorer: its features, what it learns from the newest window, and how
validation chooses between it and the frequency score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.training.repeat import Purchases, pair_stats, purchases_from
from app.training.repeat_features import FEATURE_NAMES, pair_features
from app.training.repeat_learned import (
    fit_repurchase_classifier,
    learned_pair_scores,
    training_rows,
)
from app.training.repeat_tuning import tune_repeat

DAY = 86_400


def _purchases(rows: list[tuple[str, str, float]]) -> Purchases:
    return _named_purchases(rows)[0]


def _named_purchases(rows: list[tuple[str, str, float]]) -> tuple[Purchases, np.ndarray]:
    """The purchases and the item names by index."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    frame["timestamp"] = (frame.pop("day") * DAY).astype(np.int64)
    users = tuple(sorted(set(frame["user_id"])))
    items = tuple(sorted(set(frame["item_id"])))
    return purchases_from(frame, users, items), np.asarray(items)


def _feature(table: np.ndarray, pair: int, name: str) -> float:
    return float(table[pair, FEATURE_NAMES.index(name)])


def test_features_count_baskets_back_from_the_users_last_one() -> None:
    # u's baskets: day 0 {a, b}, day 10 {a}, day 30 {a, c}; a second line of c on day 30 is
    # the same basket. Pairs in pair_stats order: (u, a), (u, b), (u, c), (v, a).
    rows = [("u", "a", 0), ("u", "b", 0), ("u", "a", 10), ("u", "a", 30), ("u", "c", 30)]
    p = _purchases([*rows, ("u", "c", 30), ("v", "a", 5)])
    stats = pair_stats(p)
    table = pair_features(p, stats)
    assert table.shape == (4, len(FEATURE_NAMES))
    assert _feature(table, 0, "occasions") == 3
    assert _feature(table, 2, "occasions") == 1
    assert _feature(table, 2, "quantity") == 2  # two lines, one occasion
    assert _feature(table, 0, "in_last_1_baskets") == 1
    assert _feature(table, 1, "in_last_1_baskets") == 0
    assert _feature(table, 1, "baskets_since_last") == 2
    assert _feature(table, 1, "days_since_last") == pytest.approx(30)
    assert _feature(table, 0, "own_interval_days") == pytest.approx(15)
    assert np.isnan(_feature(table, 1, "own_interval_days"))
    assert _feature(table, 0, "share_of_baskets") == pytest.approx(1.0)
    assert _feature(table, 1, "share_of_baskets") == pytest.approx(1 / 3)
    assert _feature(table, 0, "user_baskets") == 3
    assert _feature(table, 0, "item_buyers_log") == pytest.approx(np.log1p(2))
    assert _feature(table, 3, "days_since_last") == 0  # v's only purchase is their last


def _shop(seed: int = 0) -> tuple[Purchases, np.ndarray]:
    """Each user buys a staple in every weekly basket, and once tried a trial item that
    nobody ever buys again, plus a random filler per basket."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(150):
        staple, trial = f"s{user % 7}", f"t{user % 11}"
        for week in range(20):
            rows.append((f"u{user:03d}", staple, week * 7.0))
            rows.append((f"u{user:03d}", f"f{rng.integers(300):03d}", week * 7.0))
        rows.append((f"u{user:03d}", trial, 7.0 * rng.integers(10, 15) + 1.0))
    return _named_purchases(rows)


def test_the_classifier_learns_from_the_newest_window_which_items_come_back() -> None:
    p, names = _shop()
    classifier = fit_repurchase_classifier(p, share=0.2)
    assert classifier is not None
    stats = pair_stats(p)
    scores = learned_pair_scores(classifier, p, stats)
    items = names[stats.item]
    for user in range(p.n_users):
        mine = stats.user == user
        assert scores[mine].max() == pytest.approx(1.0)
        assert (scores[mine] > 0).all()
        best = items[mine][np.argmax(scores[mine])]
        assert best.startswith("s")  # the staple, never the trial
        trial = np.char.startswith(items[mine], "t")
        assert (scores[mine][trial] < 0.5).all()


def test_no_classifier_without_a_rebuy_to_learn_from() -> None:
    # Every purchase is of a new item: the newest window holds no rebuy.
    rows = [(f"u{u}", f"i{u}_{d}", float(d)) for u in range(20) for d in range(10)]
    assert fit_repurchase_classifier(_purchases(rows), share=0.2) is None


def test_validation_keeps_the_scorer_that_ranks_better() -> None:
    params, tuning = tune_repeat(_shop()[0])
    assert tuning.learned_scorer_ndcg is not None
    assert tuning.repeats_only_ndcg == max(tuning.frequency_scorer_ndcg, tuning.learned_scorer_ndcg)
    assert params.learned == (tuning.learned_scorer_ndcg > tuning.frequency_scorer_ndcg)
    assert "validation_ndcg@10_repeat_inclusive_learned_scorer" in tuning.as_metrics()


def test_a_large_window_is_learned_from_a_sample_of_whole_users() -> None:
    pair_user = np.repeat(np.arange(100), 7)  # 100 users, 7 pairs each
    rows = training_rows(pair_user, max_pairs=200)
    assert 0 < len(rows) <= 200
    chosen = np.unique(pair_user[rows])
    assert len(rows) == 7 * len(chosen)  # every pair of a chosen user, none of the others
    assert np.array_equal(rows, training_rows(pair_user, max_pairs=200))  # seeded
    assert len(training_rows(pair_user, max_pairs=700)) == 700


def test_too_few_rebuys_to_learn_from_leave_the_frequency_score_serving() -> None:
    # Twenty users each buy new items every day; one of them rebuys once in the newest window.
    rows = [(f"u{u}", f"i{u}_{d}", float(d)) for u in range(20) for d in range(10)]
    rows.append(("u0", "i0_0", 10.0))
    p = _purchases(rows)
    assert fit_repurchase_classifier(p, share=0.2) is None
    params, tuning = tune_repeat(p)  # no error: the frequency score competes alone
    assert not params.learned
    assert tuning.learned_scorer_ndcg is None
