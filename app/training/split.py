"""The product's offline protocol: which interactions are held out, for the build's tuning
(validation carved from the training data) and for ``recserve evaluate`` (test) alike.

* **Warm**: per user, the last ``WARM_TEST_SHARE`` (20%) of their interactions by time are
  held out, the rest kept.
* **Cold**: ``COLD_USER_SHARE`` (10%) of the users, drawn with a fixed seed, lose every
  interaction; their attributes stay.

**Same-timestamp groups are one step.** Interactions of one user that share a timestamp (the
lines of a basket, a bulk rating session) carry no order among themselves, so the warm cut
falls between such steps, never inside one: the held-out part is the user's newest whole
steps whose size is nearest to the share (rounded half up, at least one interaction; ties
hold out more). Cutting inside a step would put half a basket in train and turn the test
into completing a basket the model has already half seen. A user with a single step (one
interaction, or one basket) is held out whole, like a new user. When the data carries no
time at all (one timestamp for every interaction) there are no steps to respect: each
interaction is its own step in a seeded random order, so the held-out items are not an
artefact of id order.

A user's *targets* (*relevant items*) are the distinct held-out items they did not interact
with in the kept part: kept items are excluded from ranking, so counting them would only
inflate the ideal DCG.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.data.types import ITEM_ID, TIMESTAMP, USER_ID
from app.training.types import TrainingData

WARM_TEST_SHARE = 0.2
# Disjoint draws of cold users a cold-start choice is judged on (``cold_validation_folds``).
COLD_VALIDATION_FOLDS = 5
COLD_USER_SHARE = 0.1
# Seeds the random order of interactions in data without any time; never tuned.
NO_TIME_ORDER_SEED = 0


def held_out_rows(
    users: np.ndarray, items: np.ndarray, timestamps: np.ndarray, share: float
) -> np.ndarray:
    """The warm rule as a boolean mask over rows: True where held out. The rows' order does
    not matter: the same interactions in any order give the same split."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share}")
    if len(users) == 0:
        return np.zeros(0, dtype=bool)
    codes = np.unique(np.asarray(users), return_inverse=True)[1].ravel()
    item_codes = np.unique(np.asarray(items), return_inverse=True)[1].ravel()
    steps = _step_keys(codes, item_codes, np.asarray(timestamps))
    order = np.lexsort((steps, codes))
    user, step = codes[order], steps[order]
    counts = np.bincount(user)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(len(user)) - first[user]
    starts_step = np.concatenate(([True], (user[1:] != user[:-1]) | (step[1:] != step[:-1])))
    n_steps = np.bincount(user, weights=starts_step).astype(np.int64)
    target = np.maximum(1, np.floor(counts * share + 0.5)).astype(np.int64)
    # Candidate cuts: the start of every step but the first (a one-step user: the first).
    candidate = starts_step & ((position > 0) | (n_steps[user] == 1))
    rows = np.flatnonzero(candidate)
    held = counts[user[rows]] - position[rows]
    # Nearest to the target; among equals, the larger hold-out.
    cost = np.abs(held - target[user[rows]]) - held / (counts[user[rows]] + 1.0)
    ranked = rows[np.lexsort((cost, user[rows]))]
    owner = user[ranked]
    best = ranked[np.concatenate(([True], owner[1:] != owner[:-1]))]
    cut = np.empty(len(counts), dtype=np.int64)
    cut[user[best]] = position[best]
    mask = np.empty(len(user), dtype=bool)
    mask[order] = position >= cut[user]
    return mask


def _step_keys(users: np.ndarray, items: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """The timestamps, or without any time a seeded random order (one step per row), drawn
    over the rows in (user, item) order so it does not depend on how they were read."""
    if len(np.unique(timestamps)) > 1:
        return timestamps
    canonical = np.lexsort((items, users))
    keys = np.empty(len(users), dtype=np.int64)
    keys[canonical] = np.random.default_rng(NO_TIME_ORDER_SEED).permutation(len(users))
    return keys


def draw_cold_users(
    candidates: np.ndarray, share: float, seed: int, max_users: int | None = None
) -> np.ndarray:
    """``share`` of ``candidates`` (rounded half up, at least one, at most ``max_users``),
    drawn with ``seed``; sorted. The same candidates and seed always draw the same users."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share}")
    size = max(1, math.floor(len(candidates) * share + 0.5))
    size = min(size, len(candidates)) if max_users is None else min(size, max_users)
    drawn = np.random.default_rng(seed).choice(candidates, size=size, replace=False)
    return np.sort(drawn)


@dataclass(frozen=True)
class HoldoutSplit:
    """Index space: ``train`` keeps the vocabularies and the kept rows; ``targets[u]`` are
    user u's relevant held-out items (item indices)."""

    train: TrainingData
    targets: list[np.ndarray]

    def users_with_targets(self) -> np.ndarray:
        return np.flatnonzero([len(t) > 0 for t in self.targets])


def time_split(data: TrainingData, share: float = WARM_TEST_SHARE) -> HoldoutSplit:
    """The warm rule on ``data``."""
    held = held_out_rows(data.user_index, data.item_index, data.timestamps, share)
    return _holdout(data, held)


def cold_user_split(
    data: TrainingData,
    share: float = COLD_USER_SHARE,
    seed: int = 0,
    candidates: np.ndarray | None = None,
    max_users: int | None = None,
) -> HoldoutSplit:
    """The cold rule on ``data``: ``share`` of the ``candidates`` (default: every user with
    an interaction; at most ``max_users``) lose all their rows; their targets are everything
    they did."""
    if candidates is None:
        candidates = np.flatnonzero(np.bincount(data.user_index, minlength=data.n_users))
    cold = draw_cold_users(candidates, share, seed, max_users)
    return _holdout(data, np.isin(data.user_index, cold))


def cold_validation_folds(
    data: TrainingData,
    share: float = COLD_USER_SHARE,
    folds: int = COLD_VALIDATION_FOLDS,
    seed: int = 0,
    max_users: int | None = None,
) -> list[HoldoutSplit]:
    """``folds`` cold splits of ``data`` whose cold users are disjoint, each ``share`` of the
    users with an interaction (at most ``max_users``; fewer folds when the users run out).
    A cold-start choice judged on one draw of a tenth of the users (94 on ml-100k) follows
    that draw's noise; the folds judge it on several times as many users."""
    active = np.flatnonzero(np.bincount(data.user_index, minlength=data.n_users))
    size = max(1, math.floor(len(active) * share + 0.5))
    size = size if max_users is None else min(size, max_users)
    order = np.random.default_rng(seed).permutation(active)
    count = max(1, min(folds, len(active) // size))
    return [
        _holdout(data, np.isin(data.user_index, order[fold * size : (fold + 1) * size]))
        for fold in range(count)
    ]


def _holdout(data: TrainingData, held: np.ndarray) -> HoldoutSplit:
    # As a build on the kept rows would see the users: only tokens someone kept carries.
    train = data.with_rows(~held).without_unsupported_tokens()
    held_keys = np.unique(data.user_index[held] * data.n_items + data.item_index[held])
    train_keys = np.unique(train.user_index * data.n_items + train.item_index)
    new_keys = held_keys[~np.isin(held_keys, train_keys)]
    users, items = np.divmod(new_keys, data.n_items)
    bounds = np.searchsorted(users, np.arange(data.n_users + 1))
    targets = [items[s:e] for s, e in itertools.pairwise(bounds)]
    return HoldoutSplit(train=train, targets=targets)


@dataclass(frozen=True)
class EvaluationSplit:
    """Id space, for the evaluation: ``train`` rows of the interactions table;
    ``relevant[user]`` that user's relevant held-out items (users without any left out)."""

    train: pd.DataFrame
    relevant: dict[str, frozenset[str]]

    @property
    def test_users(self) -> list[str]:
        return sorted(self.relevant)


def warm_split(interactions: pd.DataFrame, share: float = WARM_TEST_SHARE) -> EvaluationSplit:
    """The warm rule on an interactions table."""
    held = held_out_rows(
        interactions[USER_ID].astype(str).to_numpy(),
        interactions[ITEM_ID].astype(str).to_numpy(),
        interactions[TIMESTAMP].to_numpy(),
        share,
    )
    return _split(interactions, held)


def cold_split(
    interactions: pd.DataFrame, share: float = COLD_USER_SHARE, seed: int = 0
) -> EvaluationSplit:
    """The cold rule on an interactions table; users are drawn from their sorted ids."""
    users = interactions[USER_ID].astype(str)
    cold = draw_cold_users(np.array(sorted(users.unique()), dtype=object), share, seed)
    return _split(interactions, users.isin(set(cold.tolist())).to_numpy())


def protocol_split(protocol: str, interactions: pd.DataFrame, seed: int = 0) -> EvaluationSplit:
    """The split of ``protocol``: ``warm`` or ``cold`` (its users drawn with ``seed``)."""
    if protocol == "warm":
        return warm_split(interactions)
    if protocol == "cold":
        return cold_split(interactions, seed=seed)
    raise ValueError(f"unknown protocol {protocol!r}; expected 'warm' or 'cold'")


def _split(interactions: pd.DataFrame, held: np.ndarray) -> EvaluationSplit:
    train, test = interactions[~held], interactions[held]
    seen = set(zip(train[USER_ID].astype(str), train[ITEM_ID].astype(str), strict=True))
    relevant: dict[str, set[str]] = {}
    for user, item in zip(test[USER_ID].astype(str), test[ITEM_ID].astype(str), strict=True):
        if (user, item) not in seen:
            relevant.setdefault(user, set()).add(item)
    return EvaluationSplit(
        train=train.reset_index(drop=True),
        relevant={user: frozenset(items) for user, items in relevant.items()},
    )
