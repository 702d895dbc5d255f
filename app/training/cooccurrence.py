"""Sparse item neighbour lists for catalogues too large for dense item x item matrices.

Items that follow each other closely in users' sequences are related: for every pair at
distance k <= ``window`` (both directions) the pair counts ``distance_decay ** (k - 1)``.
The relatedness of j to i is its share of i's counts, shrunk towards 0 by ``smoothing`` so a
pair seen once or twice stays weak: ``C[i, j] / (Σ_j C[i, j] + smoothing)``. Only the top
``m`` per item are kept, so the lists cost ``n_items x m`` however large the catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

PADDING_INDEX = -1


def cooccurrence_neighbours(
    sequences: Sequence[np.ndarray],
    n_items: int,
    m: int,
    *,
    window: int = 5,
    distance_decay: float = 0.7,
    smoothing: float = 5.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(indices int32, scores float32)``, both ``[n_items, m]``, best first; an item with
    fewer related items is padded with ``-1`` and ``-inf``. Never the item itself."""
    if window < 1 or m < 1 or not 0.0 < distance_decay <= 1.0 or smoothing < 0:
        raise ValueError(
            f"need window >= 1, m >= 1, 0 < distance_decay <= 1, smoothing >= 0; got "
            f"{window}, {m}, {distance_decay}, {smoothing}"
        )
    items = np.concatenate([*sequences, np.empty(0, dtype=np.int64)]).astype(np.int32)
    owner = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    counts = sp.csr_matrix((n_items, n_items), dtype=np.float32)
    for distance in range(1, window + 1):
        same = (owner[:-distance] == owner[distance:]) & (items[:-distance] != items[distance:])
        first, second = items[:-distance][same], items[distance:][same]
        weight = np.full(first.size, distance_decay ** (distance - 1), dtype=np.float32)
        pairs = sp.csr_matrix(
            (
                np.concatenate((weight, weight)),
                (np.concatenate((first, second)), np.concatenate((second, first))),
            ),
            shape=(n_items, n_items),
        )  # duplicate pairs are summed
        counts = counts + pairs
    totals = np.asarray(counts.sum(axis=1)).ravel() + smoothing
    rows = np.repeat(np.arange(n_items), np.diff(counts.indptr))
    scores = counts.data / totals[rows].astype(np.float32)
    return top_per_row(rows, counts.indices, scores, n_items, m)


def top_per_row(
    rows: np.ndarray, columns: np.ndarray, scores: np.ndarray, n_rows: int, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` best (column, score) per row of a coordinate list, best first."""
    order = np.lexsort((columns, -scores, rows))  # ties go to the lower index
    rows, columns, scores = rows[order], columns[order], scores[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    rank = np.arange(len(rows)) - starts[rows]
    kept = rank < m
    indices = np.full((n_rows, m), PADDING_INDEX, dtype=np.int32)
    top_scores = np.full((n_rows, m), -np.inf, dtype=np.float32)
    indices[rows[kept], rank[kept]] = columns[kept]
    top_scores[rows[kept], rank[kept]] = scores[kept]
    return indices, top_scores
