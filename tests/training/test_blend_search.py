"""The blend searches: the coordinate grid, then Optuna refining its optimum."""

from __future__ import annotations

import time

import numpy as np

from app.training.blend_search import blend, coordinate_search, refine_with_optuna

RNG = np.random.default_rng(0)
PARTS = {name: RNG.random((20, 30)) for name in ("ease", "trans", "prior")}
TARGET = blend(PARTS, {"ease": 1.0, "trans": 1.7, "prior": 0.05})


def closeness(scores: np.ndarray) -> float:
    return -float(np.abs(scores - TARGET).sum())


def far_deadline() -> float:
    return time.monotonic() + 60


def test_coordinate_search_lands_on_the_grid_point_nearest_the_optimum() -> None:
    weights, score = coordinate_search(PARTS, closeness, far_deadline())
    assert weights["ease"] == 1.0
    # The grid steps by factors of 2, so its best point is within a factor sqrt(2) of 1.7.
    assert 1.7 / 2**0.5 <= weights["trans"] <= 1.7 * 2**0.5
    assert score == closeness(blend(PARTS, weights))


def test_optuna_refines_a_grid_point_towards_the_optimum() -> None:
    start = {"ease": 1.0, "trans": 2.0, "prior": 0.05}
    start_score = closeness(blend(PARTS, start))

    weights, score, trials = refine_with_optuna(
        PARTS, start, start_score, closeness, far_deadline(), trials=60
    )

    assert trials == 60
    assert score > start_score
    assert score == closeness(blend(PARTS, weights))
    assert abs(weights["trans"] - 1.7) < abs(start["trans"] - 1.7)


def test_optuna_keeps_the_start_when_no_trial_beats_it() -> None:
    best = {"ease": 1.0, "trans": 1.7, "prior": 0.05}  # the optimum itself
    weights, score, trials = refine_with_optuna(
        PARTS, best, closeness(TARGET), closeness, far_deadline(), trials=10
    )
    assert weights == best
    assert score == closeness(TARGET)
    assert trials == 10


def test_optuna_runs_nothing_past_the_deadline() -> None:
    start = {"ease": 1.0, "trans": 2.0, "prior": 0.05}
    start_score = closeness(blend(PARTS, start))
    weights, score, trials = refine_with_optuna(
        PARTS, start, start_score, closeness, time.monotonic() - 1
    )
    assert (weights, score, trials) == (start, start_score, 0)
