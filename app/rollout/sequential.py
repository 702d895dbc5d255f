"""The rollout's sequential test: a mixture SPRT on the difference of two rates.

The challenger's rate ``p_B`` is compared with the champion's ``p_A`` (clicks or conversions
per impression) every time the job looks, as often as it likes. With ``θ̂ = p̂_B - p̂_A``, its
variance ``V = p̂_A(1-p̂_A)/n_A + p̂_B(1-p̂_B)/n_B`` and a normal mixture ``θ ~ N(0, τ²)`` over
the alternatives, the mixture likelihood ratio against ``θ = 0`` is (normal approximation)

    Λ = sqrt(V / (V + τ²)) · exp(τ² θ̂² / (2 V (V + τ²)))

Λ is a martingale under ``θ = 0``, so by Ville's inequality ``P(sup_n Λ_n ≥ 1/alpha) ≤ alpha``: the
chance of ever declaring a difference that is not there stays below ``alpha`` however many looks
are taken (Johari, Pekelis and Walsh, "Always valid inference", 2017). Inverting it gives the
always-valid interval ``θ̂ ± sqrt(V (V + τ²) / τ² · (2 log(1/alpha) + log((V + τ²) / V)))``.

Decisions, per look:

* roll back when the interval lies below 0 (the challenger is significantly worse); under
  equal rates this happens with probability at most ``alpha`` over the whole rollout;
* promote once both arms have ``min_impressions`` and the interval rules out a relative loss
  larger than ``non_inferiority``, or once both have ``max_impressions`` without a rollback;
* otherwise keep going.

``τ = mixture_effect · p̂_A``: the prior is as wide as the relative effect the test should
catch fastest. Using the observed ``p̂_A`` is a plug-in (its estimate settles long before a
decision); the simulations in ``tests/rollout`` measure the false-rollback rate it gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

# Below this many impressions per arm the normal approximation is too rough to act on.
FIRST_LOOK_IMPRESSIONS = 200


class Verdict(StrEnum):
    CONTINUE = "continue"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


@dataclass(frozen=True, slots=True)
class SequentialDesign:
    """The knobs of the test (``RolloutSettings`` holds the configured ones)."""

    alpha: float
    min_impressions: int
    max_impressions: int
    non_inferiority: float
    mixture_effect: float


@dataclass(frozen=True, slots=True)
class Arms:
    """Successes (clicks or conversions) and impressions of the champion (A) and challenger (B)."""

    champion_successes: int
    champion_impressions: int
    challenger_successes: int
    challenger_impressions: int


@dataclass(frozen=True, slots=True)
class Look:
    """One look at the test: the verdict, why, and the always-valid interval of ``p_B - p_A``
    (None before the first look)."""

    verdict: Verdict
    reason: str
    difference: float | None = None
    interval: tuple[float, float] | None = None


def always_valid_interval(arms: Arms, design: SequentialDesign) -> tuple[float, float] | None:
    """The ``1 - alpha`` always-valid interval of ``p_B - p_A``; None while it is undefined (a
    rate of 0 or 1 on both arms leaves no variance to scale by)."""
    n_a, n_b = arms.champion_impressions, arms.challenger_impressions
    p_a, p_b = arms.champion_successes / n_a, arms.challenger_successes / n_b
    variance = p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b
    tau_squared = (design.mixture_effect * p_a) ** 2
    if variance <= 0 or tau_squared <= 0:
        return None
    half_width = _half_width(variance, tau_squared, design.alpha)
    difference = p_b - p_a
    return difference - half_width, difference + half_width


def look(arms: Arms, design: SequentialDesign) -> Look:
    """The verdict on ``arms`` now (see the module's rules)."""
    smallest = min(arms.champion_impressions, arms.challenger_impressions)
    if smallest < FIRST_LOOK_IMPRESSIONS:
        return Look(
            Verdict.CONTINUE,
            f"{smallest} impressions on the smaller arm, need "
            f"{FIRST_LOOK_IMPRESSIONS} for a first look",
        )
    interval = always_valid_interval(arms, design)
    if interval is None:
        return Look(Verdict.CONTINUE, "no successes yet on the champion: nothing to compare")
    p_a = arms.champion_successes / arms.champion_impressions
    difference = arms.challenger_successes / arms.challenger_impressions - p_a
    low, high = interval
    if high < 0:
        return Look(
            Verdict.ROLLBACK,
            f"challenger significantly worse: rate difference {difference:+.4f}, always-valid "
            f"{1 - design.alpha:.0%} interval [{low:+.4f}, {high:+.4f}] below 0",
            difference,
            interval,
        )
    if smallest >= design.min_impressions and low >= -design.non_inferiority * p_a:
        return Look(
            Verdict.PROMOTE,
            f"challenger not worse by more than {design.non_inferiority:.0%}: interval "
            f"[{low:+.4f}, {high:+.4f}] after {smallest} impressions per arm",
            difference,
            interval,
        )
    if smallest >= design.max_impressions:
        return Look(
            Verdict.PROMOTE,
            f"challenger not significantly worse after {smallest} impressions per arm: "
            f"interval [{low:+.4f}, {high:+.4f}]",
            difference,
            interval,
        )
    return Look(Verdict.CONTINUE, "no decision yet", difference, interval)


def detection_impressions(
    champion_rate: float, relative_effect: float, design: SequentialDesign, power: float = 0.95
) -> int:
    """Impressions per arm by which a challenger whose true rate is ``champion_rate · (1 +
    relative_effect)`` (a loss: ``relative_effect < 0``) is rolled back with probability about
    ``power``: the smallest n whose interval, centred ``z(power)`` standard errors short of the
    true difference, excludes 0. The rollout's stated sample size for that effect."""
    from scipy.stats import norm

    p_a, p_b = champion_rate, champion_rate * (1 + relative_effect)
    gap = abs(p_b - p_a)
    z = float(norm.ppf(power))
    tau_squared = (design.mixture_effect * p_a) ** 2
    n = FIRST_LOOK_IMPRESSIONS
    while True:
        variance = (p_a * (1 - p_a) + p_b * (1 - p_b)) / n
        half_width = _half_width(variance, tau_squared, design.alpha)
        if gap - z * math.sqrt(variance) >= half_width:
            return n
        n = math.ceil(n * 1.02)


def _half_width(variance: float, tau_squared: float, alpha: float) -> float:
    """Half the width of the always-valid interval (the inverted mixture SPRT)."""
    spread = variance + tau_squared
    return math.sqrt(
        variance * spread / tau_squared * (2 * math.log(1 / alpha) + math.log(spread / variance))
    )
