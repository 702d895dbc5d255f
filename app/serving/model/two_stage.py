"""Serving a two-stage model (``app/retrieval.py``): candidates from the ANN index, the
neighbour lists and the popular list, ranked by the model's ONNX graph.

Every large array is opened read-only and memory-mapped (``np.load(mmap_mode="r")``, the
usearch index with ``view=True``), so the workers of one host share one copy of their pages
in the page cache instead of each holding its own; a request touches only the rows it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from app.artifacts import (
    ANN_INDEX_FILE,
    DEMOGRAPHIC_ITEMS_FILE,
    DEMOGRAPHIC_WEIGHTS_FILE,
    ITEM_VECTORS_FILE,
    NEIGHBOUR_SCORES_FILE,
    NEIGHBOURS_FILE,
    OUTPUT_SCORES,
    OUTPUT_USER_VECTOR,
    POPULARITY_FILE,
    ModelManifest,
)
from app.retrieval import (
    RetrievalArrays,
    RetrievalParams,
    candidates,
    open_ann_index,
    ranker_feeds,
)

EMPTY = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class TwoStageRanker:
    """Candidate generation and ranking for one model version."""

    session: ort.InferenceSession
    arrays: RetrievalArrays
    params: RetrievalParams
    pad_token: int
    history_max: int

    def rank(self, history: np.ndarray, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(candidates, scores)`` for one user: item indices (sorted, never a history
        item) and their float32 scores. Two graph runs: the ANN query, then the ranking."""
        history = history[-self.history_max :]
        (user_vector,) = self.session.run([OUTPUT_USER_VECTOR], self._feeds(history, tokens, EMPTY))
        items = candidates(self.arrays, self.params, np.asarray(user_vector), history, tokens)
        return items, self.score_items(history, tokens, items)

    def score_items(self, history: np.ndarray, tokens: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of sorted unique ``items`` (float32), whether candidates or not."""
        history = history[-self.history_max :]
        (scores,) = self.session.run([OUTPUT_SCORES], self._feeds(history, tokens, items))
        return np.asarray(scores)

    def _feeds(
        self, history: np.ndarray, tokens: np.ndarray, items: np.ndarray
    ) -> dict[str, np.ndarray]:
        return ranker_feeds(self.arrays, self.params, history, tokens, self.pad_token, items)


def load_ranker(
    model_dir: Path,
    manifest: ModelManifest,
    session: ort.InferenceSession,
    popular: np.ndarray,
) -> TwoStageRanker:
    """The ranker of a two-stage model directory; raises ``ValueError`` naming the file that
    does not fit the manifest (``popular``: the popular list as item indices)."""
    n_items = manifest.n_items
    vectors = np.load(model_dir / ITEM_VECTORS_FILE, mmap_mode="r")
    popularity = np.load(model_dir / POPULARITY_FILE, mmap_mode="r")
    neighbours = np.load(model_dir / NEIGHBOURS_FILE, mmap_mode="r")
    neighbour_scores = np.load(model_dir / NEIGHBOUR_SCORES_FILE, mmap_mode="r")
    index = open_ann_index(model_dir / ANN_INDEX_FILE)
    demographic_items, demographic_weights = _demographic_lists(model_dir, manifest)
    if vectors.ndim != 2 or vectors.shape[0] != n_items or popularity.shape != (n_items,):
        raise ValueError(
            f"item vectors {vectors.shape} / popularity {popularity.shape} do not fit "
            f"{n_items} items"
        )
    if index.ndim != vectors.shape[1] or len(index) > n_items:
        raise ValueError(f"ANN index of {len(index)} x {index.ndim} does not fit the vectors")
    hyperparameters = manifest.hyperparameters
    return TwoStageRanker(
        session=session,
        arrays=RetrievalArrays(
            item_vectors=vectors,
            popularity=popularity,
            popular=popular,
            neighbours=neighbours,
            neighbour_scores=neighbour_scores,
            demographic_items=demographic_items,
            demographic_weights=demographic_weights,
            index=index,
        ),
        params=RetrievalParams(**hyperparameters["retrieval"]),
        pad_token=manifest.n_tokens,
        history_max=manifest.history_max_items,
    )


def _demographic_lists(model_dir: Path, manifest: ModelManifest) -> tuple[np.ndarray, np.ndarray]:
    """The demographic cold-start lists, or empty ones for a model trained before them."""
    if DEMOGRAPHIC_ITEMS_FILE not in manifest.artifacts:
        return EMPTY, np.zeros((manifest.n_tokens, 0), dtype=np.float32)
    items = np.load(model_dir / DEMOGRAPHIC_ITEMS_FILE, mmap_mode="r")
    weights = np.load(model_dir / DEMOGRAPHIC_WEIGHTS_FILE, mmap_mode="r")
    if items.ndim != 1 or weights.shape != (manifest.n_tokens, len(items)):
        raise ValueError(
            f"demographic lists {items.shape} / weights {weights.shape} do not fit "
            f"{manifest.n_tokens} tokens"
        )
    if len(items) and (items.min() < 0 or items.max() >= manifest.n_items):
        raise ValueError(f"demographic items fall outside the {manifest.n_items} items")
    return items, weights
