from __future__ import annotations

import numpy as np
import pytest

from app.training.transitions import fit_transitions


def seq(*items: int) -> np.ndarray:
    return np.array(items, dtype=np.int64)


def test_counts_pairs_within_the_window_with_distance_decay() -> None:
    # 0 -> 1 (distance 1, weight 1), 0 -> 2 (distance 2, weight 0.5), 1 -> 2 (weight 1).
    weights = fit_transitions([seq(0, 1, 2)], 3, window=2, distance_decay=0.5, smoothing=0.0)
    np.testing.assert_allclose(weights, [[0, 2 / 3, 1 / 3], [0, 0, 1], [0, 0, 0]], atol=1e-7)


def test_pairs_never_cross_from_one_sequence_into_the_next() -> None:
    weights = fit_transitions([seq(0), seq(1, 2)], 3, window=3, distance_decay=1.0, smoothing=0)
    assert not weights[0].any()
    assert weights[1, 2] == pytest.approx(1.0)


def test_smoothing_shrinks_rarely_seen_sources_more() -> None:
    sequences = [seq(0, 1)] + [seq(2, 3)] * 9
    weights = fit_transitions(sequences, 4, window=1, distance_decay=1.0, smoothing=1.0)
    assert weights[0, 1] == pytest.approx(1 / 2)
    assert weights[2, 3] == pytest.approx(9 / 10)


def test_self_transitions_are_dropped() -> None:
    weights = fit_transitions([seq(0, 0, 1)], 2, window=1, distance_decay=1.0, smoothing=0.0)
    assert weights[0, 0] == 0.0
    assert weights[0, 1] == pytest.approx(1.0)


def test_rejects_bad_hyperparameters() -> None:
    with pytest.raises(ValueError, match="window"):
        fit_transitions([seq(0, 1)], 2, window=0, distance_decay=0.5, smoothing=0.0)


def test_items_of_one_step_never_lead_to_each_other_and_next_means_the_next_step() -> None:
    # Steps: {0, 1} (a basket), then {2}, then {3}. Window 1: only adjacent steps count.
    steps = [seq(7, 7, 8, 9)]
    weights = fit_transitions(
        [seq(0, 1, 2, 3)], 4, window=1, distance_decay=1.0, smoothing=0.0, steps=steps
    )
    assert weights[0, 1] == 0.0
    assert weights[1, 0] == 0.0
    assert weights[0, 2] == pytest.approx(1.0)
    assert weights[1, 2] == pytest.approx(1.0)
    assert weights[2, 3] == pytest.approx(1.0)
    assert weights[0, 3] == 0.0  # two steps away, outside the window


def test_step_distance_sets_the_decay_whatever_the_basket_sizes() -> None:
    # 0 -> {1, 2, 3} at distance 1 (weight 1 each), 0 -> 4 at distance 2 (weight 0.5).
    weights = fit_transitions(
        [seq(0, 1, 2, 3, 4)],
        5,
        window=2,
        distance_decay=0.5,
        smoothing=0.0,
        steps=[seq(0, 1, 1, 1, 2)],
    )
    np.testing.assert_allclose(weights[0], [0, 1 / 3.5, 1 / 3.5, 1 / 3.5, 0.5 / 3.5], rtol=1e-6)


def test_one_item_per_step_counts_like_positions() -> None:
    sequences = [seq(0, 1, 2, 3), seq(3, 1, 0)]
    plain = fit_transitions(sequences, 4, window=2, distance_decay=0.5, smoothing=1.0)
    stepped = fit_transitions(
        sequences,
        4,
        window=2,
        distance_decay=0.5,
        smoothing=1.0,
        steps=[seq(5, 6, 7, 8), seq(0, 1, 2)],
    )
    np.testing.assert_allclose(plain, stepped)


def test_same_step_links_the_items_of_a_basket_both_ways_alike() -> None:
    weights = fit_transitions(
        [seq(0, 1, 2)],
        3,
        window=1,
        distance_decay=1.0,
        smoothing=0.0,
        steps=[seq(0, 0, 1)],
        same_step=0.5,
    )
    assert weights[0, 1] == pytest.approx(weights[1, 0])
    np.testing.assert_allclose(weights[0], [0, 0.5 / 1.5, 1 / 1.5], rtol=1e-6)
