"""Deterministic, sticky assignment of users to experiment variants.

A user's place in an experiment is a pure function of ``(experiment id, user id)``: two
BLAKE2b hashes, each mapped to a number in [0, 1). Nothing is stored and Python's randomised
``hash()`` is never used, so every worker and every restart gives the same answer.

* The *traffic* hash decides enrolment: the user is in when it is below ``traffic_share``.
  Raising the share only adds users; nobody already enrolled leaves.
* The *variant* hash, with a different salt, picks the variant by cumulative weight. It is
  independent of the traffic hash, so changing the traffic share never moves an enrolled user
  to another variant, and the enrolled users split by the weights exactly like everyone would.

One experiment per request: experiments are tried in config order and the request goes to the
first one that is running at ``now``, whose targeting matches the segment and device, and whose
traffic bucket holds the user. Users no experiment takes get ``None`` (the default behaviour).
Experiments with overlapping targeting therefore share users: a later one only sees the users
an earlier one left out, and ramping up the earlier one moves users away from the later one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.experiments.config import Experiment, Strategy, Variant

TRAFFIC_SALT = "traffic"
VARIANT_SALT = "variant"
_HASH_BYTES = 8
_HASH_SPACE = float(2 ** (8 * _HASH_BYTES))


@dataclass(frozen=True, slots=True)
class Assignment:
    experiment_id: str
    variant: str
    strategy: Strategy


def unit_hash(salt: str, experiment_id: str, user_id: str) -> float:
    """A stable, uniform number in [0, 1) for this salt, experiment and user."""
    # The unit separator cannot appear in ids read from TOML or HTTP, so fields cannot blur.
    key = f"{salt}\x1f{experiment_id}\x1f{user_id}".encode()
    digest = hashlib.blake2b(key, digest_size=_HASH_BYTES).digest()
    return int.from_bytes(digest, "big") / _HASH_SPACE


def is_running(experiment: Experiment, now: datetime) -> bool:
    """True when ``start <= now < stop`` (an absent bound is open)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (experiment windows are absolute times)")
    if experiment.start is not None and now < experiment.start:
        return False
    return experiment.stop is None or now < experiment.stop


def is_enrolled(experiment: Experiment, user_id: str) -> bool:
    """True when the user's traffic bucket falls inside the experiment's traffic share."""
    return unit_hash(TRAFFIC_SALT, experiment.id, user_id) < experiment.traffic_share


def choose_variant(experiment: Experiment, user_id: str) -> Variant:
    """The user's variant, drawn with probability proportional to the variant weights."""
    point = unit_hash(VARIANT_SALT, experiment.id, user_id) * sum(
        variant.weight for variant in experiment.variants
    )
    cumulative = 0.0
    for variant in experiment.variants:
        cumulative += variant.weight
        if point < cumulative:
            return variant
    # Rounding can leave ``point`` a hair above the last sum; give it the last weighted variant.
    return next(v for v in reversed(experiment.variants) if v.weight > 0)


def assign(
    experiments: Sequence[Experiment],
    user_id: str,
    *,
    segment: str | None,
    device: str | None,
    now: datetime,
) -> Assignment | None:
    """The experiment and variant serving this request, or None for the default behaviour.

    The first experiment in ``experiments`` (config order) that is running at ``now``, targets
    this segment and device, and enrols this user wins; at most one applies per request.
    """
    for experiment in experiments:
        if not (is_running(experiment, now) and experiment.targeting.matches(segment, device)):
            continue
        if not is_enrolled(experiment, user_id):
            continue
        variant = choose_variant(experiment, user_id)
        return Assignment(experiment.id, variant.name, variant.strategy)
    return None
