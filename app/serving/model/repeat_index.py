"""The repeat model a version ships (``app/artifacts.py``): each user's best rebuys as of the
build, read at request time by a dict lookup and two array slices.

The arrays are memory-mapped read-only, so every worker serving a version shares one copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.artifacts import (
    REPEAT_HYPERPARAMETERS,
    REPEAT_INDPTR_FILE,
    REPEAT_ITEMS_FILE,
    REPEAT_SCORES_FILE,
    REPEAT_USERS_FILE,
    ModelManifest,
)


@dataclass(frozen=True)
class RepeatIndex:
    """Per user pseudonym, item indices and repeat scores (in ``(0, 1]``), best first, and
    the weight of the exploration list in the blend (its item at rank ``j`` scores
    ``weight / (1 + j)``)."""

    user_rows: dict[str, int]
    indptr: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    exploration_weight: float

    def rebuys(self, user_key: str | None) -> tuple[np.ndarray, np.ndarray]:
        """The rebuy candidates of the user whose pseudonym is ``user_key``, as ``(item
        indices, scores)``; empty when the build did not know the user (or no key)."""
        row = None if user_key is None else self.user_rows.get(user_key)
        if row is None:
            return self.items[:0], self.scores[:0]
        start, end = int(self.indptr[row]), int(self.indptr[row + 1])
        return self.items[start:end], self.scores[start:end]


def load_repeat_index(model_dir: Path, manifest: ModelManifest) -> RepeatIndex | None:
    """The version's repeat model, or None when it ships none (repeats off, or a model
    exported before them). Raises ``ValueError`` when the files disagree with each other."""
    params = manifest.hyperparameters.get(REPEAT_HYPERPARAMETERS)
    if REPEAT_USERS_FILE not in manifest.artifacts or not isinstance(params, dict):
        return None
    weight = params.get("exploration_weight")
    if not isinstance(weight, int | float):
        return None
    users = json.loads((model_dir / REPEAT_USERS_FILE).read_text())
    indptr = np.load(model_dir / REPEAT_INDPTR_FILE, mmap_mode="r")
    items = np.load(model_dir / REPEAT_ITEMS_FILE, mmap_mode="r")
    scores = np.load(model_dir / REPEAT_SCORES_FILE, mmap_mode="r")
    if (
        not isinstance(users, list)
        or indptr.shape != (len(users) + 1,)
        or items.shape != scores.shape
        or int(indptr[-1]) != len(items)
        or (items.size and (int(items.min()) < 0 or int(items.max()) >= manifest.n_items))
    ):
        raise ValueError(
            f"repeat model of {len(users)} users, indptr {indptr.shape}, items {items.shape}, "
            f"scores {scores.shape} does not fit {manifest.n_items} items"
        )
    return RepeatIndex(
        user_rows={str(user): row for row, user in enumerate(users)},
        indptr=indptr,
        items=items,
        scores=scores,
        exploration_weight=float(weight),
    )
