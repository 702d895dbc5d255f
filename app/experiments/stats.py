"""Frequentist statistics for comparing two proportions and checking an experiment's split.

* ``compare_proportions``: two-sided two-proportion z-test. The p-value uses the *pooled*
  standard error (the null hypothesis says both rates are equal); the confidence interval of
  the absolute difference uses the *unpooled* one (no such assumption). The relative lift
  ``p_t / p_c - 1`` gets a delta-method interval:
  ``Var(p_t/p_c) ≈ (p_t/p_c)² · (Var(p_t)/p_t² + Var(p_c)/p_c²)``, which, unlike dividing the
  absolute interval by the control rate, includes the control's own uncertainty.
* ``required_sample_size``: units per variant for a two-sided test to detect a relative lift
  with the given power (the usual normal-approximation formula, no continuity correction).
* ``proportion_interval``: the Wilson score interval of one rate (a variant's CTR on a chart):
  unlike the normal one it stays inside [0, 1] and is sensible at a handful of clicks.
* ``sample_ratio_mismatch``: chi-square goodness of fit of observed counts to the weights.

These tests treat every unit (e.g. impression) as independent. When several units come from
one randomised user they are positively correlated and the true variance is larger.

scipy is imported inside the functions that use it: every API worker imports this module
(through the experiments report), and loads scipy only when a report is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class ProportionComparison:
    control_rate: float
    treatment_rate: float
    absolute_difference: float  # treatment - control
    absolute_ci: tuple[float, float]
    relative_lift: float | None  # None when the control rate is 0
    relative_ci: tuple[float, float] | None  # None when either rate is 0 (delta method fails)
    z: float
    p_value: float


@dataclass(frozen=True, slots=True)
class SampleRatioResult:
    chi_square: float | None  # None when a weight-0 category has observations (no finite value)
    p_value: float
    mismatch: bool


def _two_sided_critical(alpha: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(1 - alpha / 2))


def proportion_interval(
    successes: int, trials: int, alpha: float = 0.05
) -> tuple[float, float] | None:
    """The (1 - alpha) Wilson score interval of ``successes / trials``; None without trials."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in [0, {trials}], got {successes}")
    z = _two_sided_critical(alpha)
    rate = successes / trials
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def compare_proportions(
    control_successes: int,
    control_trials: int,
    treatment_successes: int,
    treatment_trials: int,
    alpha: float = 0.05,
) -> ProportionComparison:
    """Two-proportion z-test of treatment against control with (1 - alpha) intervals."""
    from scipy import stats

    for name, successes, trials in (
        ("control", control_successes, control_trials),
        ("treatment", treatment_successes, treatment_trials),
    ):
        if trials <= 0 or not 0 <= successes <= trials:
            raise ValueError(f"{name}: need 0 <= successes <= trials and trials > 0")
    p_c = control_successes / control_trials
    p_t = treatment_successes / treatment_trials
    difference = p_t - p_c
    pooled = (control_successes + treatment_successes) / (control_trials + treatment_trials)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / control_trials + 1 / treatment_trials))
    # A pooled rate of 0 or 1 means both rates are equal: no evidence of any difference.
    z = difference / pooled_se if pooled_se > 0 else 0.0
    p_value = float(2 * stats.norm.sf(abs(z)))

    var_c = p_c * (1 - p_c) / control_trials
    var_t = p_t * (1 - p_t) / treatment_trials
    critical = _two_sided_critical(alpha)
    half_width = critical * math.sqrt(var_c + var_t)
    relative_lift = p_t / p_c - 1 if p_c > 0 else None
    relative_ci = None
    if p_c > 0 and p_t > 0:
        ratio = p_t / p_c
        ratio_se = ratio * math.sqrt(var_t / p_t**2 + var_c / p_c**2)
        relative_ci = (ratio - 1 - critical * ratio_se, ratio - 1 + critical * ratio_se)
    return ProportionComparison(
        control_rate=p_c,
        treatment_rate=p_t,
        absolute_difference=difference,
        absolute_ci=(difference - half_width, difference + half_width),
        relative_lift=relative_lift,
        relative_ci=relative_ci,
        z=z,
        p_value=p_value,
    )


def required_sample_size(
    base_rate: float, relative_mde: float, alpha: float, power: float
) -> int | None:
    """Units per variant to detect ``base_rate * (1 + relative_mde)`` against ``base_rate``.

    ``n = (z(1-alpha/2)·√(2·p̄(1-p̄)) + z(power)·√(p1(1-p1) + p2(1-p2)))² / (p2 - p1)²``,
    ``p̄ = (p1 + p2) / 2``. None when the base rate is 0 or 1, or the target rate leaves (0, 1).
    """
    from scipy import stats

    target_rate = base_rate * (1 + relative_mde)
    if not (0 < base_rate < 1 and 0 < target_rate < 1) or target_rate == base_rate:
        return None
    mean_rate = (base_rate + target_rate) / 2
    numerator = _two_sided_critical(alpha) * math.sqrt(2 * mean_rate * (1 - mean_rate)) + float(
        stats.norm.ppf(power)
    ) * math.sqrt(base_rate * (1 - base_rate) + target_rate * (1 - target_rate))
    return math.ceil(numerator**2 / (target_rate - base_rate) ** 2)


def sample_ratio_mismatch(
    observed: Sequence[int], weights: Sequence[float], threshold: float = SRM_THRESHOLD
) -> SampleRatioResult:
    """Chi-square goodness of fit of ``observed`` counts to the shares ``weights`` imply.

    A category with weight 0 and any observation is a mismatch outright (p = 0). With no
    observations, or fewer than two weighted categories, there is nothing to test (p = 1).
    """
    from scipy import stats

    if len(observed) != len(weights):
        raise ValueError(f"{len(observed)} observed counts for {len(weights)} weights")
    if any(count > 0 and weight <= 0 for count, weight in zip(observed, weights, strict=True)):
        return SampleRatioResult(chi_square=None, p_value=0.0, mismatch=True)
    pairs = [(count, weight) for count, weight in zip(observed, weights, strict=True) if weight > 0]
    total = sum(count for count, _ in pairs)
    if total == 0 or len(pairs) < 2:
        return SampleRatioResult(chi_square=0.0, p_value=1.0, mismatch=False)
    weight_sum = sum(weight for _, weight in pairs)
    expected = [total * weight / weight_sum for _, weight in pairs]
    result = stats.chisquare([count for count, _ in pairs], f_exp=expected)
    p_value = float(result.pvalue)
    return SampleRatioResult(float(result.statistic), p_value, p_value < threshold)
