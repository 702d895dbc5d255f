"""Each item's most related items, precomputed at export for ``GET /items/{id}/similar``.

The relatedness of ``j`` to ``i`` is what the hybrid would score ``j`` for a user whose whole
history is ``i``, without the user-only terms (demographic, popularity) and without the
next-items regression, which answers "what after this history" rather than "what is like
this item"::

    related(i, j) = w_ease * (B + βC)[i, j] + w_trans * T[i, j]

so co-interaction (EASE), shared attributes (content) and "bought next" (transitions) are
blended with the weights the model was tuned with, and the index agrees with the model.
Only positive relatedness counts: an item with fewer than ``M`` related items is padded.
"""

from __future__ import annotations

import numpy as np

from app.training.hybrid import HybridRecommender

DEFAULT_NEIGHBOURS = 50
# Rows per block: one block of float32 scores is CHUNK_ROWS x n_items (80 MB at 20k items).
CHUNK_ROWS = 1024
PADDING_INDEX = -1


def model_neighbours(
    model: HybridRecommender, m: int = DEFAULT_NEIGHBOURS
) -> tuple[np.ndarray, np.ndarray]:
    """``item_neighbours`` over the matrices of a fitted ``model`` with its blend weights."""
    matrices = model.matrices()
    params = model.params
    return item_neighbours(
        matrices.item_item,
        matrices.transitions,
        m,
        item_item_weight=params.w_ease,
        transition_weight=params.w_trans,
    )


def item_neighbours(
    item_item: np.ndarray,
    transitions: np.ndarray,
    m: int = DEFAULT_NEIGHBOURS,
    *,
    item_item_weight: float = 1.0,
    transition_weight: float = 1.0,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``m`` related items per row of ``item_item_weight * item_item +
    transition_weight * transitions`` (both items x items).

    Returns ``(indices int32, scores float32)``, both ``[n_items, m]``, best first. The item
    itself and non-positive scores are never neighbours; those slots hold ``-1`` and ``-inf``.
    """
    n_items = item_item.shape[0]
    if item_item.shape != (n_items, n_items) or transitions.shape != item_item.shape:
        raise ValueError(
            f"need square matrices of one shape, got {item_item.shape} and {transitions.shape}"
        )
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    indices = np.full((n_items, m), PADDING_INDEX, dtype=np.int32)
    scores = np.full((n_items, m), -np.inf, dtype=np.float32)
    kept = min(m, n_items)
    for start in range(0, n_items, chunk_rows):
        stop = min(start + chunk_rows, n_items)
        block = np.float32(item_item_weight) * item_item[start:stop]
        block += np.float32(transition_weight) * transitions[start:stop]
        rows = np.arange(stop - start)
        block[rows, rows + start] = -np.inf
        top = np.argpartition(-block, kept - 1, axis=1)[:, :kept]
        top_scores = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        top_scores = np.take_along_axis(top_scores, order, axis=1)
        related = top_scores > 0
        indices[start:stop, :kept] = np.where(related, top, PADDING_INDEX)
        scores[start:stop, :kept] = np.where(related, top_scores, -np.inf)
    return indices, scores
