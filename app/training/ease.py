"""EASE item-item weights (Steck, "Embarrassingly Shallow Autoencoders", WWW 2019).

Closed form: ``G = XᵀX + λI``, ``P = G⁻¹``, ``B = -P / diag(P)`` column-wise, ``diag(B) = 0``.
The zero diagonal stops an item from recommending itself; λ shrinks weights between items
that rarely co-occur.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack


def check_dense_size(n_items: int, max_dense_items: int) -> None:
    """Refuse catalogues whose dense item x item matrices would not fit comfortably."""
    if n_items > max_dense_items:
        raise ValueError(
            f"{n_items} items exceed max_dense_items={max_dense_items}: the hybrid keeps dense "
            "item x item matrices; raise the limit if memory allows "
            f"(~{4 * 4 * n_items**2 / 1e9:.1f} GB) or wait for candidate lists"
        )


def fit_ease(interactions: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE weights B (float32, items x items) from a binary users x items matrix."""
    if l2 <= 0:
        raise ValueError(f"EASE l2 must be > 0, got {l2}")
    gram = (interactions.T @ interactions).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    precision = _spd_inverse(gram)
    weights = precision / (-np.diag(precision))[np.newaxis, :]
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


def _spd_inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix via Cholesky: about twice as fast as a
    general inverse, which matters at 20k items."""
    factor, info = lapack.dpotrf(matrix, lower=False, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"Gram matrix is not positive definite (dpotrf info={info})")
    upper, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"cannot invert the Gram matrix (dpotri info={info})")
    # dpotri fills only the upper triangle.
    return np.triu(upper) + np.triu(upper, 1).T


def ease_neighbours(
    interactions: sp.csr_matrix, items: np.ndarray, l2: float, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour lists from EASE fitted on the ``items`` columns only (a catalogue too large
    for a dense fit keeps its most popular part): ``(indices int32, scores float32)``, both
    [n_items, m], each listed item's ``m`` largest positive weights best first; every other
    row, and the rest of a short row, padded with ``-1`` and ``-inf`` (the layout of
    ``cooccurrence.cooccurrence_neighbours``)."""
    n_items = interactions.shape[1]
    items = np.asarray(items, dtype=np.int64)
    weights = fit_ease(sp.csr_matrix(interactions[:, items]), l2)
    keep = min(m, max(len(items) - 1, 0))
    indices = np.full((n_items, m), -1, dtype=np.int32)
    scores = np.full((n_items, m), -np.inf, dtype=np.float32)
    if keep == 0:
        return indices, scores
    top = np.argpartition(-weights, keep - 1, axis=1)[:, :keep]
    top_weights = np.take_along_axis(weights, top, axis=1)
    order = np.argsort(-top_weights, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    top_weights = np.take_along_axis(top_weights, order, axis=1)
    positive = top_weights > 0
    indices[items, :keep] = np.where(positive, items[top], -1)
    scores[items, :keep] = np.where(positive, top_weights, -np.inf)
    return indices, scores
