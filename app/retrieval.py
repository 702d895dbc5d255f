"""Candidate generation of the two-stage model, shared by training (recall measurement, the
reference) and serving (the request path), so both assemble exactly the same candidates.

A two-stage model scores only a few hundred candidates per request instead of every item:

1. candidates = the union of the ANN index's nearest items to the user vector (cosine over
   unit item embeddings), the related items of the user's most recent items with the largest
   neighbour scores (the neighbour index) and the most popular items, minus the user's
   history; a user without history but with attribute tokens also gets the best of the
   demographic list for their tokens;
2. per candidate the features the ranking graph blends: its popularity prior and its
   affinity with what is known of the user. With a history that is the neighbour score (how
   related the candidate is to the recent items, newest counting most); without one, the
   demographic score (the mean of the user's tokens' ridge weights for the candidate: how
   often people with these attributes take it).

Every score term is then covered by a source: the embedding term by the ANN search (cosine
ranks items exactly as the dot product with any user vector does, as item vectors are unit
length), the neighbour term by the neighbour lists and the demographic term by the
demographic list (each is zero for every other item), and the popularity term by the popular
list. The candidates miss an item of the exact top k only when the ANN search misses it, or
when it ranks high through a mix of terms without topping any.

The affinity column changes meaning with the history so that the ranking graph keeps its two
feature columns and its warm and cold weight rows: a model exported before the demographic
term existed has no demographic arrays and a zero cold affinity weight, and serves unchanged.

The ANN index is a usearch HNSW index opened with ``view=True``: memory-mapped, so every
worker process shares its pages, like the ``.npy`` arrays opened with ``mmap_mode="r"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

# onnxruntime must be loaded before usearch: with usearch 2.26.2 to 2.26.6 (the latest at the
# time of writing; 2.26.1 is fine) loading onnxruntime's extension after usearch's crashes the
# interpreter (SIGSEGV, onnxruntime 1.28 and 1.32 alike). Whoever imports this module first
# gets a safe order; tests/test_import_order.py checks it in a fresh interpreter.
import onnxruntime  # noqa: F401
from usearch.index import Index

from app.artifacts import (
    INPUT_CANDIDATE_FEATURES,
    INPUT_CANDIDATE_VECTORS,
    INPUT_HISTORY_VECTORS,
    INPUT_USER_TOKENS,
)

# The ANN index: cosine over unit vectors; f16 halves the file (and the pages each worker
# maps) with no measurable loss of recall on unit vectors.
ANN_METRIC = "cos"
ANN_DTYPE = "f16"
ANN_CONNECTIVITY = 16
ANN_EXPANSION_ADD = 64
ANN_EXPANSION_SEARCH = 64
# Up to this many items the index is built on one thread: the same vectors then give the same
# graph on every build (concurrent insertion links items in a different order each time, and a
# small graph's recall varied from 0.92 to 1.0 between builds). 20k items take ~3 s this way;
# bigger catalogues are built on every core (1M items: minutes saved).
ANN_ONE_THREAD_MAX_ITEMS = 20_000
# The graph's per-candidate feature columns, in order.
FEATURE_COLUMNS = ("popularity", "affinity")


class VectorIndex(Protocol):
    """What candidate generation needs of an index: the usearch index, or exact search."""

    def __len__(self) -> int: ...

    def search(self, vectors: Any, count: int = ...) -> Any: ...


@dataclass(frozen=True)
class RetrievalParams:
    """How many candidates each source gives; recorded in the manifest's hyperparameters."""

    ann_candidates: int = 200
    popular_candidates: int = 100
    # A user without history: this many of the demographic list, best for their tokens.
    demographic_candidates: int = 100
    recent_items: int = 10
    recent_decay: float = 0.8
    # The related items of the recent ones with the largest neighbour scores: long lists read
    # for a long history would otherwise make thousands of candidates.
    neighbour_candidates: int = 500


@dataclass(frozen=True)
class RetrievalArrays:
    """A two-stage model's read-only arrays (memory-mapped when served).

    ``item_vectors`` float16 [n, d]: unit embeddings, all-zero for items without any;
    ``popularity`` float32 [n]: the prior; ``popular`` int64: item indices, best first;
    ``neighbours`` int32 / ``neighbour_scores`` float32 [n, M]: related items, best first,
    ``-1`` padded. ``demographic_items`` int64 [D]: sorted item indices with a demographic
    score, ``demographic_weights`` float32 [tokens, D] their weight per attribute token (D = 0:
    no demographic term). ``index``: the ANN index over the items with an embedding (keys =
    indices).
    """

    item_vectors: np.ndarray
    popularity: np.ndarray
    popular: np.ndarray
    neighbours: np.ndarray
    neighbour_scores: np.ndarray
    demographic_items: np.ndarray
    demographic_weights: np.ndarray
    index: VectorIndex | None


def build_ann_index(item_vectors: np.ndarray) -> Index:
    """The HNSW index over the items whose embedding is not all zero (reproducible up to
    ``ANN_ONE_THREAD_MAX_ITEMS`` of them)."""
    keys = np.flatnonzero(np.any(item_vectors != 0, axis=1)).astype(np.uint64)
    index = Index(
        ndim=item_vectors.shape[1],
        metric=ANN_METRIC,
        dtype=ANN_DTYPE,
        connectivity=ANN_CONNECTIVITY,
        expansion_add=ANN_EXPANSION_ADD,
        expansion_search=ANN_EXPANSION_SEARCH,
    )
    if keys.size:
        threads = 1 if keys.size <= ANN_ONE_THREAD_MAX_ITEMS else 0  # 0: every core
        index.add(keys, np.ascontiguousarray(item_vectors[keys], dtype=np.float32), threads=threads)
    return index


def open_ann_index(path: Path) -> Index:
    """The saved index, memory-mapped read-only (``view``): shared by every process."""
    index = Index.restore(str(path), view=True, expansion_search=ANN_EXPANSION_SEARCH)
    if index is None:
        raise ValueError(f"{path}: not a usearch index")
    return index


def ann_search(index: VectorIndex | None, user_vector: np.ndarray, count: int) -> np.ndarray:
    """Item indices of the ``count`` nearest items by cosine (fewer if the index is smaller;
    none for a zero vector, which has no direction)."""
    if index is None or count <= 0 or len(index) == 0 or not np.any(user_vector):
        return np.empty(0, dtype=np.int64)
    matches = index.search(np.asarray(user_vector, dtype=np.float32), min(count, len(index)))
    return np.asarray(matches.keys, dtype=np.int64)


def candidates(
    arrays: RetrievalArrays,
    params: RetrievalParams,
    user_vector: np.ndarray,
    history: np.ndarray,
    tokens: np.ndarray,
) -> np.ndarray:
    """Sorted unique candidate item indices for a user (``history`` oldest -> newest,
    ``tokens`` attribute token indices)."""
    # History items come back from the ANN search too; ask for enough to leave the quota.
    count = params.ann_candidates + min(len(history), params.ann_candidates)
    cold_with_tokens = len(tokens) > 0 and len(history) == 0
    found = np.concatenate(
        (
            ann_search(arrays.index, user_vector, count),
            _best_related(arrays, params, history),
            arrays.popular[: params.popular_candidates],
            _demographic_best(arrays, tokens, params.demographic_candidates)
            if cold_with_tokens
            else np.empty(0, dtype=np.int64),
        )
    )
    unique = np.unique(found)
    return unique[~np.isin(unique, history)]


def candidate_features(
    arrays: RetrievalArrays,
    params: RetrievalParams,
    history: np.ndarray,
    tokens: np.ndarray,
    items: np.ndarray,
) -> np.ndarray:
    """float32 [len(items), len(FEATURE_COLUMNS)] for sorted unique ``items``: popularity,
    then the affinity: with a history ``Σ_r w_r · neighbour_score(r -> item)`` over the
    recent items r, ``w_r = decay ** age`` (age 0 = newest) normalised to sum 1; without
    one the mean of the user's ``tokens``' demographic weights for the item."""
    features = np.zeros((len(items), len(FEATURE_COLUMNS)), dtype=np.float32)
    features[:, 0] = arrays.popularity[items]
    if len(items) and len(history):
        features[:, 1] = _neighbour_affinity(arrays, params, history, items)
    elif len(items) and len(tokens) and len(arrays.demographic_items):
        features[:, 1] = _demographic_affinity(arrays, tokens, items)
    return features


def _related(
    arrays: RetrievalArrays, params: RetrievalParams, history: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The recent items' neighbours (``-1`` where a list is short) and their scores weighted
    by ``w_r = decay ** age`` normalised to sum 1, as flat arrays."""
    recent = history[-params.recent_items :]
    weights = params.recent_decay ** np.arange(len(recent) - 1, -1, -1, dtype=np.float64)
    weights /= weights.sum()
    related = np.asarray(arrays.neighbours[recent]).ravel()
    related_scores = (weights[:, None] * arrays.neighbour_scores[recent]).ravel()
    return related, related_scores


def _best_related(
    arrays: RetrievalArrays, params: RetrievalParams, history: np.ndarray
) -> np.ndarray:
    """The ``neighbour_candidates`` related items outside the history with the largest summed
    neighbour score."""
    related, related_scores = _related(arrays, params, history)
    listed = (related >= 0) & ~np.isin(related, history)
    items, slots = np.unique(related[listed], return_inverse=True)
    if len(items) <= params.neighbour_candidates:
        return items.astype(np.int64)
    summed = np.zeros(len(items), dtype=np.float64)
    np.add.at(summed, slots, related_scores[listed])
    best = np.argpartition(-summed, params.neighbour_candidates - 1)
    return items[best[: params.neighbour_candidates]].astype(np.int64)


def _neighbour_affinity(
    arrays: RetrievalArrays, params: RetrievalParams, history: np.ndarray, items: np.ndarray
) -> np.ndarray:
    related, related_scores = _related(arrays, params, history)
    position = np.searchsorted(items, related)
    hit = (related >= 0) & (position < len(items))
    hit[hit] = items[position[hit]] == related[hit]
    neighbour = np.zeros(len(items), dtype=np.float64)
    np.add.at(neighbour, position[hit], related_scores[hit])
    return neighbour


def _demographic_scores(arrays: RetrievalArrays, tokens: np.ndarray) -> np.ndarray:
    """The mean of the tokens' rows of the demographic weights: one score per listed item."""
    rows = np.asarray(arrays.demographic_weights[np.asarray(tokens, dtype=np.int64)])
    return rows.mean(axis=0, dtype=np.float64)


def _demographic_best(arrays: RetrievalArrays, tokens: np.ndarray, count: int) -> np.ndarray:
    if count <= 0 or not len(arrays.demographic_items):
        return np.empty(0, dtype=np.int64)
    scores = _demographic_scores(arrays, tokens)
    if count >= len(scores):
        return np.asarray(arrays.demographic_items, dtype=np.int64)
    best = np.argpartition(-scores, count - 1)[:count]
    return np.asarray(arrays.demographic_items[best], dtype=np.int64)


def _demographic_affinity(
    arrays: RetrievalArrays, tokens: np.ndarray, items: np.ndarray
) -> np.ndarray:
    listed = arrays.demographic_items
    scores = _demographic_scores(arrays, tokens)
    position = np.minimum(np.searchsorted(listed, items), len(listed) - 1)
    return np.where(listed[position] == items, scores[position], 0.0)


def ranker_feeds(
    arrays: RetrievalArrays,
    params: RetrievalParams,
    history: np.ndarray,
    tokens: np.ndarray,
    pad_token: int,
    items: np.ndarray,
) -> dict[str, np.ndarray]:
    """The ranking graph's inputs for one user (``history`` already cut to the model's
    ``history_max``; ``tokens`` as indices) and sorted unique candidate ``items``: the
    padding row and slot go first, so they never shift the recency of real items."""
    dimensions = arrays.item_vectors.shape[1]
    history_vectors = np.zeros((len(history) + 1, dimensions), dtype=np.float32)
    history_vectors[1:] = arrays.item_vectors[history]
    return {
        INPUT_HISTORY_VECTORS: history_vectors,
        INPUT_USER_TOKENS: np.concatenate(([pad_token], tokens)).astype(np.int64),
        INPUT_CANDIDATE_VECTORS: np.asarray(arrays.item_vectors[items], dtype=np.float32),
        INPUT_CANDIDATE_FEATURES: candidate_features(arrays, params, history, tokens, items),
    }
