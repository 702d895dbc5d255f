"""Item -> next-item transition matrix from time-ordered user sequences.

A sequence is a list of steps (``TrainingData.histories_with_steps``): items sharing a
timestamp, such as the lines of one basket, are one step, so their order is never a
transition. Item x at step s "leads to" every y at steps s+1 .. s+window with weight
``distance_decay ** (k - 1)`` for a step distance k; with ``same_step`` > 0 the items of one
step also link to each other, both ways alike, with that weight (they were chosen together,
in no order). Rows are normalised by their total plus
``smoothing``, so an item seen leading somewhere only once or twice keeps small weights
instead of a confident 1.0.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

# Pairs generated per pass: bounds the temporary arrays (about 40 bytes per pair).
PAIRS_PER_CHUNK = 4_000_000


def fit_transitions(
    sequences: Sequence[np.ndarray],
    n_items: int,
    *,
    window: int,
    distance_decay: float,
    smoothing: float,
    steps: Sequence[np.ndarray] | None = None,
    same_step: float = 0.0,
) -> np.ndarray:
    """Row-normalised transition weights T (float32, items x items), zero diagonal.

    ``steps[u]`` (non-decreasing, aligned with ``sequences[u]``) groups items into steps;
    without it every item is a step of its own."""
    if window < 1 or not 0.0 < distance_decay <= 1.0 or smoothing < 0 or same_step < 0:
        raise ValueError(
            f"need window >= 1, 0 < distance_decay <= 1, smoothing >= 0, same_step >= 0; got "
            f"{window}, {distance_decay}, {smoothing}, {same_step}"
        )
    items = np.concatenate([*sequences, np.empty(0, dtype=np.int64)]).astype(np.int64)
    step = _global_steps(sequences, steps, window)
    # Positions of each item's first following step (or of its own step's start) and of the
    # end of its window: the steps are sorted, so both are binary searches.
    first = np.searchsorted(step, step, side="left" if same_step else "right")
    stop = np.searchsorted(step, step + window, side="right")
    counts = sp.csr_matrix((n_items, n_items), dtype=np.float64)
    pairs = stop - first
    bounds = np.searchsorted(np.cumsum(pairs), np.arange(0, pairs.sum(), PAIRS_PER_CHUNK))
    # No pair at all (every history one step) leaves no chunk to count.
    for begin, end in itertools.pairwise([*bounds, len(items)]):
        counts = counts + _pair_counts(
            items, step, first, stop, (begin, end), n_items, distance_decay, same_step
        )
    return row_normalised(counts, smoothing)


def row_normalised(counts: sp.spmatrix, smoothing: float) -> np.ndarray:
    """Dense T (float32) from the weighted pair counts: the diagonal cleared, each row divided
    by its total plus ``smoothing``."""
    dense = counts.toarray()
    np.fill_diagonal(dense, 0.0)
    totals = dense.sum(axis=1, keepdims=True) + smoothing
    return np.divide(dense, totals, out=np.zeros_like(dense), where=totals > 0).astype(np.float32)


def _global_steps(
    sequences: Sequence[np.ndarray], steps: Sequence[np.ndarray] | None, window: int
) -> np.ndarray:
    """One non-decreasing step number per item across all sequences, consecutive sequences
    more than ``window`` steps apart so that no pair crosses from one user to the next."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    if steps is None:
        local = np.arange(lengths.sum()) - np.repeat(starts, lengths)
    else:
        local = np.concatenate([np.empty(0, dtype=np.int64), *steps]).astype(np.int64)
        if np.any(np.diff(local)[np.diff(np.repeat(np.arange(len(lengths)), lengths)) == 0] < 0):
            raise ValueError("steps must be non-decreasing within each sequence")
        local = local - np.repeat(local[starts[lengths > 0]], lengths[lengths > 0])
    spans = np.zeros(len(lengths), dtype=np.int64)
    ends = starts + lengths - 1
    spans[lengths > 0] = local[ends[lengths > 0]]
    offsets = np.cumsum(spans + window + 1) - (spans + window + 1)
    return local + np.repeat(offsets, lengths)


def _pair_counts(
    items: np.ndarray,
    step: np.ndarray,
    first: np.ndarray,
    stop: np.ndarray,
    sources_at: tuple[int, int],
    n_items: int,
    distance_decay: float,
    same_step: float,
) -> sp.csr_matrix:
    """Weighted (source, target) counts of the sources at positions ``begin:end``; an item
    paired with itself lands on the diagonal, which the caller clears."""
    begin, end = sources_at
    counts = stop[begin:end] - first[begin:end]
    sources = np.repeat(np.arange(begin, end), counts)
    # Target positions: first[i], first[i] + 1, ..., stop[i] - 1 for each source i.
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    targets = np.repeat(first[begin:end], counts) + offsets
    distance = step[targets] - step[sources]
    weights = np.where(distance > 0, distance_decay ** (distance - 1).astype(np.float64), same_step)
    return sp.csr_matrix((weights, (items[sources], items[targets])), shape=(n_items, n_items))
