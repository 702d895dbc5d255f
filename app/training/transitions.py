"""Item -> next-item transition matrix from time-ordered user sequences.

For each sequence, item x at position j "leads to" every y at j+1 .. j+window with weight
``distance_decay ** (k - 1)`` for distance k. Rows are normalised by their total plus
``smoothing``, so an item seen leading somewhere only once or twice keeps small weights
instead of a confident 1.0.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def fit_transitions(
    sequences: list[np.ndarray],
    n_items: int,
    *,
    window: int,
    distance_decay: float,
    smoothing: float,
) -> np.ndarray:
    """Row-normalised transition weights T (float32, items x items), zero diagonal."""
    if window < 1 or not 0.0 < distance_decay <= 1.0 or smoothing < 0:
        raise ValueError(
            f"need window >= 1, 0 < distance_decay <= 1, smoothing >= 0; got {window}, "
            f"{distance_decay}, {smoothing}"
        )
    items = np.concatenate([*sequences, np.empty(0, dtype=np.int64)]).astype(np.int64)
    owner = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    sources, targets, weights = [], [], []
    for distance in range(1, window + 1):
        same_sequence = owner[:-distance] == owner[distance:]
        sources.append(items[:-distance][same_sequence])
        targets.append(items[distance:][same_sequence])
        weights.append(np.full(int(same_sequence.sum()), distance_decay ** (distance - 1)))
    counts = sp.coo_matrix(
        (np.concatenate(weights), (np.concatenate(sources), np.concatenate(targets))),
        shape=(n_items, n_items),
    ).toarray()  # duplicate pairs are summed here
    np.fill_diagonal(counts, 0.0)
    totals = counts.sum(axis=1, keepdims=True) + smoothing
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0).astype(np.float32)
