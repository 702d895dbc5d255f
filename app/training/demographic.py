"""Ridge regression from user attribute tokens to the users x items interaction matrix.

Each user's one-hot token row is divided by its token count, so the prediction for a user is
the *mean* of their tokens' weight rows, which is what the ONNX graph computes
(``Σ_t W[t] / |tokens|``). The target is centred on the item means and the means are added
back to every token row, so a cold user with attributes gets "what people like them
interact with": item popularity shifted by their group's preferences.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def fit_demographic(
    user_tokens: sp.csr_matrix, interactions: sp.csr_matrix, l2: float
) -> np.ndarray:
    """Token -> item weights W (float32, tokens x items).

    Only users with at least one interaction inform the fit: the others carry no signal about
    what their group likes and would only pull every item towards zero.
    """
    if l2 <= 0:
        raise ValueError(f"demographic l2 must be > 0, got {l2}")
    active = np.flatnonzero(np.diff(interactions.indptr) > 0)
    targets = interactions[active]
    features = mean_token_rows(user_tokens[active])
    item_means = np.asarray(targets.mean(axis=0)).ravel()
    gram = (features.T @ features).toarray()
    gram[np.diag_indices_from(gram)] += l2
    # Fᵀ(Y - 1·meanᵀ) without materialising the dense centred Y.
    token_mass = np.asarray(features.sum(axis=0)).ravel()
    rhs = np.asarray((features.T @ targets).todense()) - np.outer(token_mass, item_means)
    coefficients = np.linalg.solve(gram, rhs)
    return (coefficients + item_means[np.newaxis, :]).astype(np.float32)


def mean_token_rows(user_tokens: sp.csr_matrix) -> sp.csr_matrix:
    """Scale each row to sum to 1 (rows without tokens stay zero)."""
    counts = np.asarray(user_tokens.sum(axis=1)).ravel()
    inverse = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return sp.csr_matrix(sp.diags(inverse) @ user_tokens)
