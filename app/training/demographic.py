"""What users with given attribute tokens interact with: the cold-start term of the hybrid.

Two models map tokens to items. Both are read the same way by the ONNX graph, as the mean of
the user's tokens' rows (``Σ_t W[t] / |tokens|``), so tuning picks one per build:

* ``ridge`` (``fit_demographic``): a linear regression onto the interaction matrix. The
  target is centred on the item means and the means are added back to every token row, so a
  cold user gets item popularity shifted by their group's preferences.
* ``lift`` (``fit_token_lift``): each token's log lift per item, naive Bayes over the
  tokens; the popularity term beside it supplies log P(item).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

DemographicModel = Literal["ridge", "lift"]


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


def fit_token_items(
    model: DemographicModel,
    strength: float,
    user_tokens: sp.csr_matrix,
    interactions: sp.csr_matrix,
) -> np.ndarray:
    """Token -> item weights of ``model``; ``strength`` is ridge's λ or lift's shrinkage."""
    if model == "lift":
        return fit_token_lift(user_tokens, interactions, strength)
    if model == "ridge":
        return fit_demographic(user_tokens, interactions, strength)
    raise ValueError(f"unknown demographic model {model!r}; expected 'ridge' or 'lift'")


def fit_token_lift(
    user_tokens: sp.csr_matrix, interactions: sp.csr_matrix, shrinkage: float
) -> np.ndarray:
    """Token -> item log lift (float32, tokens x items): ``log P(item | token) - log P(item)``
    over the users with interactions, P(item | token) shrunk towards P(item) by ``shrinkage``
    pseudo-users, so a token few users carry lifts nothing much.

    Summed over a user's tokens this is naive Bayes: added to log popularity it ranks items
    by an estimate of P(item | tokens), which is what NDCG over a cold user's items rewards.
    Counting rather than a ridge fit: with tens to hundreds of users per token, it is a
    steadier estimate than a linear fit to 0/1 targets.
    """
    if shrinkage <= 0:
        raise ValueError(f"lift shrinkage must be > 0, got {shrinkage}")
    active = np.flatnonzero(np.diff(interactions.indptr) > 0)
    tokens = sp.csr_matrix(user_tokens[active], dtype=np.float32)
    targets = sp.csr_matrix(interactions[active], dtype=np.float32)
    # Half a pseudo-user keeps log P(item) finite for items nobody in the fit has.
    share = (np.asarray(targets.sum(axis=0)).ravel() + 0.5) / (len(active) + 1.0)
    token_users = np.asarray(tokens.sum(axis=0)).ravel()
    together = np.asarray((tokens.T @ targets).todense())
    given_token = (together + shrinkage * share) / (token_users[:, np.newaxis] + shrinkage)
    return (np.log(given_token) - np.log(share)).astype(np.float32)


def mean_token_rows(user_tokens: sp.csr_matrix) -> sp.csr_matrix:
    """Scale each row to sum to 1 (rows without tokens stay zero)."""
    counts = np.asarray(user_tokens.sum(axis=1)).ravel()
    inverse = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return sp.csr_matrix(sp.diags(inverse) @ user_tokens)
