"""Next-items regression: predict what a user does next from their recency-weighted history.

EASE learns which items go together; this learns which items come *after* a history, which is
what a temporal split asks. Every user sequence is cut every ``step`` items, a cut moved back
to the start of the step it falls in (items sharing a timestamp are one move of the user,
``TrainingData.histories_with_steps``: a basket is never split into its own past and future);
each cut is one sample whose input is the recency-weighted last ``context`` items before the
cut (weights ``decay ** age``, age 0 = newest, normalised to sum 1: exactly the vector the
hybrid scores at serving time) and whose target is the next ``horizon`` items. Ridge
regression in closed form::

    S = (XᵀX + λI)⁻¹ XᵀY        (items x items)

so a user's scores are ``x_user @ S``: a linear autoregressive model with the same shape, and
the same ONNX cost, as the EASE term.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve


def fit_next_items(
    sequences: Sequence[np.ndarray],
    n_items: int,
    *,
    decay: float,
    context: int,
    horizon: int,
    step: int,
    l2: float,
    steps: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Ridge weights S (float32, items x items) from time-ordered item sequences.

    ``steps[u]`` (aligned with ``sequences[u]``) groups items into steps; without it each
    item is one. A sequence shorter than ``step + 1`` gives no sample; with no samples at all
    S is zero.
    """
    if not 0.0 < decay <= 1.0 or min(context, horizon, step) < 1 or l2 <= 0:
        raise ValueError(
            f"need 0 < decay <= 1, context/horizon/step >= 1 and l2 > 0; got decay={decay}, "
            f"context={context}, horizon={horizon}, step={step}, l2={l2}"
        )
    inputs, targets = _samples(sequences, steps, n_items, decay, context, horizon, step)
    gram = (inputs.T @ inputs).toarray()
    gram[np.diag_indices_from(gram)] += l2
    rhs = (inputs.T @ targets).toarray()
    return solve(gram, rhs, assume_a="pos", overwrite_a=True, overwrite_b=True).astype(np.float32)


def _samples(
    sequences: Sequence[np.ndarray],
    steps: Sequence[np.ndarray] | None,
    n_items: int,
    decay: float,
    context: int,
    horizon: int,
    step: int,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Sparse ``(X, Y)``: one row per cut, built with one vectorised pass per offset."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    items = np.concatenate([*sequences, np.empty(0, dtype=np.int64)]).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    cuts_per_sequence = np.maximum(0, (lengths - 1) // step)
    owner = np.repeat(np.arange(len(sequences)), cuts_per_sequence)
    # The k-th cut of a sequence sits after its (k * step)-th item (k = 1, 2, ...).
    rank = np.arange(len(owner)) - np.repeat(
        np.cumsum(cuts_per_sequence) - cuts_per_sequence, cuts_per_sequence
    )
    cut = (rank + 1) * step  # position (within its sequence) of the first target item
    if steps is not None:
        owner, cut = _cuts_at_step_starts(owner, cut, starts, lengths, steps)
    begin, end = starts[owner], starts[owner] + lengths[owner]
    n_samples = len(owner)

    def gather(offsets: range, weight: np.ndarray) -> sp.csr_matrix:
        rows, cols, values = [], [], []
        for k, offset in enumerate(offsets):
            position = begin + cut + offset
            valid = (position >= begin) & (position < end)
            rows.append(np.flatnonzero(valid))
            cols.append(items[position[valid]])
            values.append(np.full(int(valid.sum()), weight[k]))
        return sp.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_samples, n_items),
        )

    past = gather(range(-1, -context - 1, -1), decay ** np.arange(context, dtype=np.float64))
    totals = np.asarray(past.sum(axis=1)).ravel()
    inputs = sp.csr_matrix(sp.diags(1.0 / np.maximum(totals, 1e-300)) @ past)
    targets = gather(range(horizon), np.ones(horizon))
    return inputs, targets


def _cuts_at_step_starts(
    owner: np.ndarray,
    cut: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    steps: Sequence[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Each cut moved back to the first position of its step; cuts that land on a sequence's
    first step (no past) or on an earlier cut are dropped."""
    step = np.concatenate([np.empty(0, dtype=np.int64), *steps]).astype(np.int64)
    if len(step) != lengths.sum():
        raise ValueError("steps must be aligned with the sequences")
    position = np.arange(len(step))
    new_step = np.ones(len(step), dtype=bool)
    new_step[1:] = step[1:] != step[:-1]
    new_step[starts[lengths > 0]] = True
    step_start = np.maximum.accumulate(np.where(new_step, position, 0))
    moved = step_start[starts[owner] + cut] - starts[owner]
    keep = moved > 0
    keep[1:] &= (moved[1:] != moved[:-1]) | (owner[1:] != owner[:-1])
    return owner[keep], moved[keep]
