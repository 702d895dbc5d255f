"""Item-item content similarity from item attribute tokens (category, brand, genre, ...).

This is the "content" half of the hybrid: an item nobody has bought yet still shares tokens
with other items, so it gets neighbours that pure co-occurrence (EASE) cannot give it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def content_similarity(item_tokens: sp.csr_matrix) -> np.ndarray:
    """Cosine similarity (float32, items x items) over one-hot item tokens, zero diagonal.

    Items without tokens have all-zero rows and columns.
    """
    norms = np.sqrt(np.asarray(item_tokens.multiply(item_tokens).sum(axis=1)).ravel())
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    normalised = sp.diags(inverse) @ item_tokens
    similarity = (normalised @ normalised.T).toarray().astype(np.float32)
    np.fill_diagonal(similarity, 0.0)
    return similarity
