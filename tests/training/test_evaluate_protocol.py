"""The evaluation protocol: split rules, cold-user draws and per-user metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from app.data.ingest import ingest, load_dataset
from app.training.evaluate_protocol import (
    DEFAULT_COLD_SEED,
    cold_split,
    protocol_split,
    user_metrics,
    warm_split,
    write_atomic_interactions,
)


def interactions(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return frame.assign(event_type="view", value=1.0)


def test_warm_split_holds_out_the_last_fifth_rounded():
    # 7 interactions: 7 * 0.2 = 1.4 -> 1 test; 8: 1.6 -> 2 test.
    rows = [("a", f"i{k}", 100 + k) for k in range(7)] + [("b", f"i{k}", 100 + k) for k in range(8)]
    split = warm_split(interactions(rows))
    assert split.relevant == {"a": frozenset({"i6"}), "b": frozenset({"i6", "i7"})}
    assert len(split.train) == 6 + 6


def test_warm_split_breaks_timestamp_ties_by_item_id():
    # Same timestamp for the last two: "i2" sorts after "i10" as a string, so it is the test item.
    rows = [("a", "i0", 1), ("a", "i1", 2), ("a", "i2", 9), ("a", "i10", 9), ("a", "i3", 3)]
    assert warm_split(interactions(rows)).relevant == {"a": frozenset({"i2"})}
    # Input order must not matter.
    assert warm_split(interactions(rows[::-1])).relevant == {"a": frozenset({"i2"})}


def test_a_user_with_one_interaction_is_all_test():
    split = warm_split(interactions([("solo", "x", 5), ("b", "x", 1), ("b", "y", 2)]))
    assert split.relevant["solo"] == frozenset({"x"})
    assert "solo" not in set(split.train["user_id"])


def test_test_items_already_in_train_are_not_relevant():
    rows = [("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("a", "w", 4), ("a", "x", 5)]
    split = warm_split(interactions(rows))
    assert "a" not in split.relevant  # the only held-out item was seen in train


def test_cold_split_moves_a_tenth_of_users_deterministically():
    rows = [(f"u{u:02d}", f"i{(u + k) % 7}", k) for u in range(40) for k in range(3)]
    frame = interactions(rows)
    first, again = (
        cold_split(frame, seed=3),
        cold_split(frame.sample(frac=1.0, random_state=1), seed=3),
    )
    assert first.relevant == again.relevant
    assert len(first.relevant) == 4
    cold = set(first.relevant)
    assert not cold & set(first.train["user_id"])
    assert all(len(first.relevant[u]) == 3 for u in cold)
    assert set(cold_split(frame, seed=4).relevant) != cold


def test_protocol_split_is_the_named_split_and_refuses_others():
    rows = [(f"u{u:02d}", f"i{(u + k) % 7}", k) for u in range(40) for k in range(5)]
    frame = interactions(rows)
    assert protocol_split("warm", frame).relevant == warm_split(frame).relevant
    assert protocol_split("cold", frame, 3).relevant == cold_split(frame, seed=3).relevant
    default = cold_split(frame, seed=DEFAULT_COLD_SEED).relevant
    assert protocol_split("cold", frame).relevant == default
    with pytest.raises(ValueError, match="'hot'"):
        protocol_split("hot", frame)


def test_ndcg_recall_and_hit_against_hand_computed_values():
    d = 1 / np.log2(np.arange(2, 12))
    metrics = user_metrics(
        [["a", "x", "b"], ["x", "y"], [f"n{k}" for k in range(10)]],
        [{"a", "b"}, {"y", "z", "w"}, {"q"}],
        k=10,
    )
    np.testing.assert_allclose(metrics.ndcg, [(d[0] + d[2]) / (d[0] + d[1]), d[1] / d[:3].sum(), 0])
    np.testing.assert_allclose(metrics.recall, [1.0, 1 / 3, 0.0])
    np.testing.assert_allclose(metrics.hit, [1.0, 1.0, 0.0])


def test_recall_and_ideal_dcg_are_capped_at_k():
    relevant = {f"r{k}" for k in range(15)}
    ranked = [f"r{k}" for k in range(10)]
    metrics = user_metrics([ranked], [relevant], k=10)
    assert metrics.ndcg[0] == pytest.approx(1.0)
    assert metrics.recall[0] == pytest.approx(1.0)
    only_first_k = user_metrics([[*ranked[:2], *["n"] * 8, "r12"]], [relevant], k=10)
    assert only_first_k.recall[0] == pytest.approx(0.2)  # the 11th item is not counted
    assert math.isclose(only_first_k.hit[0], 1.0)


def test_user_without_relevant_items_is_refused():
    with pytest.raises(ValueError, match="no relevant items"):
        user_metrics([["a"]], [set()], k=10)


def test_written_train_part_ingests_back_unchanged(tmp_path):
    rows = [("u 1", "007", 1_700_000_000 + k) for k in range(3)] + [("u2", "NA", 1_700_000_500)]
    frame = interactions(rows)
    path = write_atomic_interactions(frame, tmp_path / "shop" / "shop.inter")
    ingest(path.parent, tmp_path / "data")
    back = load_dataset(tmp_path / "data").interactions
    assert sorted(zip(back["user_id"], back["item_id"], back["timestamp"], strict=True)) == sorted(
        rows
    )


def test_ids_with_tabs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="tab or newline"):
        write_atomic_interactions(interactions([("a\tb", "x", 1)]), tmp_path / "x.inter")
