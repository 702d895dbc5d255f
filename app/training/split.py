"""Per-user time splits: the offline protocol for validation (tuning) and evaluation.

For each user, interactions sorted by (timestamp, item id); the last ``holdout_share`` of them
(rounded, at least one) are held out. The held-out *targets* are the distinct held-out items
the user did not already interact with before the split point: those are excluded from
ranking, so counting them would only inflate the ideal DCG.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from app.training.types import TrainingData


@dataclass(frozen=True)
class HoldoutSplit:
    """``train`` keeps the earlier interactions; ``targets[u]`` are user u's held-out items."""

    train: TrainingData
    targets: list[np.ndarray]


def time_split(
    data: TrainingData, holdout_share: float = 0.2, *, whole_steps: bool = False
) -> HoldoutSplit:
    """Hold out the last ``holdout_share`` of every user's interactions. With ``whole_steps``
    the interactions sharing the cut's timestamp (a basket) are held out together, never
    split by their item ids."""
    if not 0.0 < holdout_share < 1.0:
        raise ValueError(f"holdout_share must be in (0, 1), got {holdout_share}")
    counts = np.bincount(data.user_index, minlength=data.n_users)
    # No count*share lands exactly on .5 for share 0.2, so rounding mode does not matter there.
    n_held = np.maximum(1, np.rint(counts * holdout_share).astype(np.int64))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(len(data.user_index)) - starts[data.user_index]
    held = position >= (counts - n_held)[data.user_index]
    if whole_steps and len(held):
        first_held = np.minimum(starts + counts - n_held, len(held) - 1)
        held |= data.timestamps >= data.timestamps[first_held][data.user_index]

    train = data.with_rows(~held)
    held_keys = np.unique(data.user_index[held] * data.n_items + data.item_index[held])
    train_keys = np.unique(train.user_index * data.n_items + train.item_index)
    new_keys = held_keys[~np.isin(held_keys, train_keys)]
    users, items = np.divmod(new_keys, data.n_items)
    bounds = np.searchsorted(users, np.arange(data.n_users + 1))
    targets = [items[s:e] for s, e in itertools.pairwise(bounds)]
    return HoldoutSplit(train=train, targets=targets)
