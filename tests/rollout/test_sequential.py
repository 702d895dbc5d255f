"""The rollout's decision procedure on a synthetic population: every look of the job is one
call of ``look`` on the counts so far, exactly as the job makes it."""

from __future__ import annotations

import numpy as np
import pytest

from app.rollout.sequential import (
    Arms,
    SequentialDesign,
    Verdict,
    always_valid_interval,
    detection_impressions,
    look,
)

DESIGN = SequentialDesign(
    alpha=0.05,
    min_impressions=2000,
    max_impressions=20000,
    non_inferiority=0.05,
    mixture_effect=0.2,
)
CHAMPION_CTR = 0.10
STEP = 100  # impressions per arm between two looks


def _rollout(champion_ctr: float, challenger_ctr: float, seed: int) -> tuple[Verdict, int]:
    """Run looks on simulated impressions until a decision: the verdict and impressions per arm."""
    rng = np.random.default_rng(seed)
    a = b = n = 0
    while True:
        a += int(rng.binomial(STEP, champion_ctr))
        b += int(rng.binomial(STEP, challenger_ctr))
        n += STEP
        verdict = look(Arms(a, n, b, n), DESIGN).verdict
        if verdict is not Verdict.CONTINUE:
            return verdict, n


def test_a_worse_challenger_is_rolled_back_within_the_stated_sample_size() -> None:
    stated = detection_impressions(CHAMPION_CTR, -0.3, DESIGN)
    outcomes = [_rollout(CHAMPION_CTR, CHAMPION_CTR * 0.7, seed) for seed in range(200)]
    assert all(verdict is Verdict.ROLLBACK for verdict, _ in outcomes)
    within = np.mean([n <= stated for _, n in outcomes])
    assert within >= 0.95, f"{within:.2%} rolled back within {stated} impressions per arm"


def test_a_better_challenger_is_promoted() -> None:
    outcomes = [_rollout(CHAMPION_CTR, CHAMPION_CTR * 1.2, seed) for seed in range(200)]
    assert all(verdict is Verdict.PROMOTE for verdict, _ in outcomes)
    assert max(n for _, n in outcomes) <= DESIGN.max_impressions


def test_an_equal_challenger_is_rarely_rolled_back_however_often_the_job_looks() -> None:
    runs = 600
    rolled_back = sum(
        _rollout(CHAMPION_CTR, CHAMPION_CTR, seed)[0] is Verdict.ROLLBACK for seed in range(runs)
    )
    # The bound is alpha; the binomial noise of 600 runs is about 0.9 points.
    assert rolled_back / runs <= DESIGN.alpha, f"{rolled_back} false rollbacks in {runs}"


def test_no_decision_before_the_first_look_nor_a_promotion_before_the_minimum() -> None:
    assert look(Arms(0, 150, 40, 150), DESIGN).verdict is Verdict.CONTINUE
    # Far better, but only 1000 impressions per arm: not promoted yet.
    assert look(Arms(100, 1000, 200, 1000), DESIGN).verdict is Verdict.CONTINUE
    promoted = look(Arms(200, 2000, 400, 2000), DESIGN)
    assert promoted.verdict is Verdict.PROMOTE
    assert promoted.interval is not None
    assert promoted.interval[0] > 0


def test_the_interval_narrows_with_the_sample_and_is_undefined_without_variance() -> None:
    small = always_valid_interval(Arms(100, 1000, 100, 1000), DESIGN)
    large = always_valid_interval(Arms(1000, 10000, 1000, 10000), DESIGN)
    assert small is not None
    assert large is not None
    assert small[0] < large[0] < 0 < large[1] < small[1]
    assert always_valid_interval(Arms(0, 1000, 0, 1000), DESIGN) is None


@pytest.mark.parametrize("effect", [-0.3, -0.2, -0.1])
def test_smaller_losses_need_larger_samples(effect: float) -> None:
    assert detection_impressions(CHAMPION_CTR, effect, DESIGN) < detection_impressions(
        CHAMPION_CTR, effect / 2, DESIGN
    )
