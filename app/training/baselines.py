"""Reference recommenders the evaluation reports beside the served model, each a
``Recommender`` (``recommender.py``) with its hyperparameters given at construction:

* ``Popularity``: distinct train users per item;
* ``SegmentPopularity``: the same count within the user's segment (their ``gender=`` and
  ``age=`` tokens), global popularity breaking ties and answering users without a segment;
* ``EASE``: the closed form in ``ease.py`` (λ), scored from the whole history;
* ``ItemKNN``: cosine item-item similarity, each item's ``neighbours`` most similar kept;
* ``RP3Beta``: the three-step random walk user -> item -> user -> item, its transition
  probabilities raised to ``alpha`` and divided by the target's popularity to ``beta``;
* ``DemographicRidge``: ridge from the user's attribute tokens to items (``demographic.py``).

The item-item baselines hold a dense items x items matrix, so on catalogues above
``max_items`` they are fitted over the most popular items only (the others score ``-inf``:
never recommended); their cost grows with the cube (EASE) or square of the catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from app.training.demographic import fit_demographic, mean_token_rows
from app.training.ease import fit_ease
from app.training.recommender import Recommender
from app.training.types import TrainingData, Vocabulary

# 10k items: an 800 MB Gram matrix inverted in ~20 s here; 30k would need 7 GB and 27x longer.
DENSE_MAX_ITEMS = 10_000
SEGMENT_FIELDS = ("gender", "age")


@dataclass(frozen=True)
class BaselineParams:
    """A baseline's hyperparameters (only those it uses are set)."""

    l2: float | None = None
    neighbours: int | None = None
    alpha: float | None = None
    beta: float | None = None
    max_items: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class _Baseline(Vocabulary, Recommender[BaselineParams]):
    def __init__(self, params: BaselineParams) -> None:
        super().__init__()
        self.params: BaselineParams = params
        self.fitted_ = False

    def fit(self, data: TrainingData) -> Self:
        self.item_ids_, self.tokens_ = data.item_ids, data.tokens
        self._learn(data)
        self.fitted_ = True
        return self

    def _learn(self, data: TrainingData) -> None:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")


class Popularity(_Baseline):
    """The same ranking for everyone; equal counts rank by item index."""

    def __init__(self) -> None:
        super().__init__(BaselineParams())
        self.ranked_ = np.zeros(0)

    def _learn(self, data: TrainingData) -> None:
        counts = _user_counts(data.interaction_matrix())
        self.ranked_ = counts + _tie_break(len(counts))

    def score(self, histories: Sequence[np.ndarray], tokens: Sequence[np.ndarray]) -> np.ndarray:
        self._check_fitted()
        return np.tile(self.ranked_, (len(histories), 1))


class SegmentPopularity(_Baseline):
    """Popularity within the user's (gender x age) segment, global popularity below one
    count breaking ties."""

    def __init__(self) -> None:
        super().__init__(BaselineParams())
        self.global_rank_ = np.zeros(0)
        self.segments_: dict[tuple[int, ...], np.ndarray] = {}

    def _learn(self, data: TrainingData) -> None:
        interactions = data.interaction_matrix()
        counts = _user_counts(interactions)
        self.global_rank_ = (counts + _tie_break(len(counts))) / (counts.max(initial=0) + 1.0)
        members: dict[tuple[int, ...], list[int]] = {}
        for user, tokens in enumerate(data.user_token_lists()):
            key = self._segment(tokens)
            if key is not None:
                members.setdefault(key, []).append(user)
        self.segments_ = {key: _user_counts(interactions[rows]) for key, rows in members.items()}

    def _segment(self, tokens: np.ndarray) -> tuple[int, ...] | None:
        """The user's token index for each segment field, or None without all of them."""
        by_field = {self.tokens_[t].split("=", 1)[0]: int(t) for t in tokens}
        if not all(f in by_field for f in SEGMENT_FIELDS):
            return None
        return tuple(by_field[f] for f in SEGMENT_FIELDS)

    def score(self, histories: Sequence[np.ndarray], tokens: Sequence[np.ndarray]) -> np.ndarray:
        self._check_fitted()
        scores = np.tile(self.global_rank_, (len(tokens), 1))
        for row, user_tokens in enumerate(tokens):
            key = self._segment(np.asarray(user_tokens, dtype=np.int64))
            if key is not None and key in self.segments_:
                scores[row] += self.segments_[key]
        return scores


class _ItemItem(_Baseline):
    """Scores = the user's history (binary) times an items x items matrix over the kept
    (most popular) items."""

    def __init__(self, params: BaselineParams) -> None:
        super().__init__(params)
        self.kept_: np.ndarray | None = None
        self.weights_ = np.zeros((0, 0), dtype=np.float32)

    def _learn(self, data: TrainingData) -> None:
        interactions = data.interaction_matrix()
        limit = self.params.max_items or DENSE_MAX_ITEMS
        self.kept_ = None
        if data.n_items > limit:
            counts = _user_counts(interactions)
            self.kept_ = np.sort(np.lexsort((np.arange(len(counts)), -counts))[:limit])
            interactions = sp.csr_matrix(interactions[:, self.kept_])
        self.weights_ = self._item_item(interactions)

    def _item_item(self, interactions: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def score(self, histories: Sequence[np.ndarray], tokens: Sequence[np.ndarray]) -> np.ndarray:
        self._check_fitted()
        n_items, kept = len(self.item_ids_), self.kept_
        width = n_items if kept is None else len(kept)
        position = None if kept is None else np.full(n_items, -1, dtype=np.int64)
        if position is not None and kept is not None:
            position[kept] = np.arange(len(kept))
        columns = []
        for history in histories:
            items = np.unique(np.asarray(history, dtype=np.int64))
            if position is not None:
                items = position[items]
                items = items[items >= 0]
            columns.append(items)
        rows = np.repeat(np.arange(len(columns)), [len(c) for c in columns])
        cols = np.concatenate([np.empty(0, dtype=np.int64), *columns])
        user_items = sp.csr_matrix(
            (np.ones(len(cols)), (rows, cols)), shape=(len(histories), width)
        )
        scored = np.asarray(user_items @ self.weights_, dtype=np.float64)
        if kept is None:
            return scored
        scores = np.full((len(histories), n_items), -np.inf)
        scores[:, kept] = scored
        return scores


class EASE(_ItemItem):
    def __init__(self, l2: float = 250.0, max_items: int = DENSE_MAX_ITEMS) -> None:
        super().__init__(BaselineParams(l2=l2, max_items=max_items))

    def _item_item(self, interactions: sp.csr_matrix) -> np.ndarray:
        return fit_ease(interactions, float(self.params.l2 or 0.0))


class ItemKNN(_ItemItem):
    """Cosine similarity of the items' user columns; item i contributes only to its
    ``neighbours`` most similar items."""

    def __init__(self, neighbours: int = 100, max_items: int = DENSE_MAX_ITEMS) -> None:
        if neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, got {neighbours}")
        super().__init__(BaselineParams(neighbours=neighbours, max_items=max_items))

    def _item_item(self, interactions: sp.csr_matrix) -> np.ndarray:
        norms = np.sqrt(_user_counts(interactions))
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        scaled = sp.csr_matrix(interactions @ sp.diags(inverse))
        similarity = np.asarray((scaled.T @ scaled).todense(), dtype=np.float32)
        np.fill_diagonal(similarity, 0.0)
        return _keep_top(similarity, int(self.params.neighbours or 1))


class RP3Beta(_ItemItem):
    """P(j | i) = Σ_u P(u | i) P(j | u), raised to ``alpha``, divided by popularity(j) to
    ``beta``: ``beta`` > 0 lifts less popular items."""

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, max_items: int = DENSE_MAX_ITEMS):
        super().__init__(BaselineParams(alpha=alpha, beta=beta, max_items=max_items))

    def _item_item(self, interactions: sp.csr_matrix) -> np.ndarray:
        user_degree = np.asarray(interactions.sum(axis=1)).ravel()
        item_degree = _user_counts(interactions)
        user_to_item = sp.diags(_inverse(user_degree)) @ interactions
        item_to_user = sp.diags(_inverse(item_degree)) @ interactions.T
        walk = np.asarray((item_to_user @ user_to_item).todense(), dtype=np.float32)
        walk **= np.float32(self.params.alpha or 1.0)
        walk *= np.power(np.maximum(item_degree, 1.0), -float(self.params.beta or 0.0)).astype(
            np.float32
        )
        np.fill_diagonal(walk, 0.0)
        return walk


class DemographicRidge(_Baseline):
    """Ridge from the user's mean attribute-token row to items; without tokens, nothing."""

    def __init__(self, l2: float = 100.0) -> None:
        super().__init__(BaselineParams(l2=l2))
        self.weights_ = np.zeros((0, 0), dtype=np.float32)

    def _learn(self, data: TrainingData) -> None:
        self.weights_ = fit_demographic(
            data.user_tokens, data.interaction_matrix(), float(self.params.l2 or 0.0)
        )

    def score(self, histories: Sequence[np.ndarray], tokens: Sequence[np.ndarray]) -> np.ndarray:
        self._check_fitted()
        rows = np.repeat(np.arange(len(tokens)), [len(t) for t in tokens])
        columns = np.concatenate([np.empty(0, dtype=np.int64), *tokens]).astype(np.int64)
        one_hot = sp.csr_matrix(
            (np.ones(len(rows)), (rows, columns)), shape=(len(tokens), len(self.tokens_))
        )
        return np.asarray(mean_token_rows(one_hot) @ self.weights_, dtype=np.float64)


def _user_counts(interactions: sp.csr_matrix) -> np.ndarray:
    """Distinct users per item of a binary users x items matrix."""
    return np.asarray(interactions.sum(axis=0), dtype=np.float64).ravel()


def _inverse(values: np.ndarray) -> np.ndarray:
    return np.divide(1.0, values, out=np.zeros_like(values, dtype=np.float64), where=values > 0)


def _keep_top(matrix: np.ndarray, per_row: int) -> np.ndarray:
    """``matrix`` with all but each row's ``per_row`` largest entries set to zero."""
    if per_row >= matrix.shape[1]:
        return matrix
    drop = np.argpartition(-matrix, per_row, axis=1)[:, per_row:]
    np.put_along_axis(matrix, drop, 0.0, axis=1)
    return matrix


def _tie_break(n_items: int) -> np.ndarray:
    """A bonus below 0.5 that falls with the index: equal integer counts rank by index."""
    return (n_items - np.arange(n_items)) / (2.0 * (n_items + 1))
