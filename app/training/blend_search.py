"""Blend weights of the hybrid's parts, chosen on validation NDCG.

The parts are score matrices (validation users x items) computed once; a candidate blend only
re-adds them. Two searches run one after the other, within the tuning's time budget:

1. a coordinate search over a log grid of factors of 2 per part (EASE anchored at 1): robust,
   and it can switch a part off;
2. Optuna's TPE sampler over the same ranges, continuous, started from the coordinate optimum
   (its first trial), so it refines that point and can only keep it or beat it on validation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np

# Factors of 2 span ~4 orders of magnitude in 13 steps: fine enough that the blend is not
# left a factor of 4 off, coarse enough for a short budget.
WEIGHT_FACTORS = tuple(2.0**e for e in range(-6, 7))
# TPE trials after the coordinate search; each costs one blend and one NDCG over the
# validation users (~10-40 ms on ml-100k).
REFINE_TRIALS = 60
REFINE_SPAN = 4.0
ANCHOR = "ease"
PRIOR = "prior"  # what a cold user gets: never weighted zero

Score = Callable[[np.ndarray], float]


def blend(parts: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    total = np.zeros_like(parts[ANCHOR])
    for name, weight in weights.items():
        if weight:
            total += weight * parts[name]
    return total


def _unit_weights(parts: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per part, the weight that puts its typical row maximum level with the anchor's."""
    scale = {name: float(np.mean(np.abs(part).max(axis=1))) or 1.0 for name, part in parts.items()}
    return {name: scale[ANCHOR] / scale[name] for name in parts}


def coordinate_search(
    parts: Mapping[str, np.ndarray],
    score: Score,
    deadline: float,
    initial: Mapping[str, float] | None = None,
) -> tuple[dict[str, float], float]:
    """Weights per part (``ease`` fixed at 1) maximising ``score``, starting from ``initial``
    (parts it does not name start at 0) when given."""
    unit = _unit_weights(parts)
    # The prior must stay > 0: it is all a cold user gets, and a zero would rank them randomly.
    # It starts at its smallest option, a tie-breaker: started large, the search compensates
    # with the other weights and stalls in a popularity-heavy corner.
    weights = {name: 0.0 for name in parts}
    weights[PRIOR] = WEIGHT_FACTORS[0] * unit[PRIOR]
    weights.update({name: w for name, w in (initial or {}).items() if name in parts})
    weights[ANCHOR] = 1.0
    best = score(blend(parts, weights))
    for _ in range(3):
        improved = False
        for name in (n for n in parts if n != ANCHOR):
            options = [unit[name] * f for f in WEIGHT_FACTORS] + ([] if name == PRIOR else [0.0])
            for option in options:
                if time.monotonic() > deadline:
                    return weights, best
                candidate = {**weights, name: option}
                ndcg = score(blend(parts, candidate))
                if ndcg > best + 1e-6:
                    best, weights, improved = ndcg, candidate, True
        if not improved:
            break
    return weights, best


def refine_with_optuna(
    parts: Mapping[str, np.ndarray],
    start: Mapping[str, float],
    start_score: float,
    score: Score,
    deadline: float,
    *,
    trials: int = REFINE_TRIALS,
    seed: int = 0,
) -> tuple[dict[str, float], float, int]:
    """TPE search of every weight but the anchor's on a log scale over the coordinate
    search's range, the first trial at ``start``. Returns the best weights, their score and
    the number of trials run; ``start`` itself unless a trial beat it."""
    import optuna  # a training-only dependency, imported when tuning runs

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    unit = _unit_weights(parts)
    floor = {name: unit[name] * WEIGHT_FACTORS[0] / 2 for name in parts}
    # Within a factor REFINE_SPAN of the coordinate optimum either way: the grid already found
    # the region, and a continuous search over all four orders of magnitude spends its trials
    # far from it.
    bounds = {
        name: (
            max(start[name] / REFINE_SPAN, floor[name]),
            max(start[name], floor[name]) * REFINE_SPAN,
        )
        for name in parts
        if name != ANCHOR
    }

    def weights_of(values: Mapping[str, float]) -> dict[str, float]:
        return {ANCHOR: 1.0, **values}

    def objective(trial: optuna.Trial) -> float:
        values = {
            name: trial.suggest_float(name, low, high, log=True)
            for name, (low, high) in bounds.items()
        }
        return score(blend(parts, weights_of(values)))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    # A part the coordinate search switched off starts at the bottom of its range: ~1/128 of
    # the anchor's scale, so it barely moves a ranking.
    study.enqueue_trial(
        {name: min(max(start[name], low), high) for name, (low, high) in bounds.items()}
    )
    remaining = deadline - time.monotonic()
    if remaining > 0:
        study.optimize(objective, n_trials=trials, timeout=remaining)
    finished = [t for t in study.trials if t.value is not None]
    if not finished or study.best_value <= start_score + 1e-6:
        return dict(start), start_score, len(finished)
    return weights_of(study.best_params), float(study.best_value), len(finished)
