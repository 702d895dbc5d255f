"""Business filters applied to a full score vector before the top-k cut."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the best ``k`` items, best first, never an excluded index.

    ``argpartition`` keeps this O(n) in the catalogue size; only the k winners are sorted.
    """
    masked = scores.astype(np.float32, copy=True)
    if excluded.size:
        masked[excluded] = -np.inf
    available = int(np.isfinite(masked).sum())
    k = min(k, available)
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    part = np.argpartition(-masked, k - 1)[:k]
    order = part[np.argsort(-masked[part], kind="stable")]
    return order, masked[order]
