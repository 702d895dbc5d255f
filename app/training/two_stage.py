"""The two-stage model for large catalogues: the numpy reference of what ``ranker.onnx``
computes, and the candidate generation it ranks (``app/retrieval.py``).

A dense item x item matrix costs 4 n² bytes (40 GB at 100k items), so beyond
``max_dense_items`` the hybrid gives way to this model. For a user with history h (oldest
-> newest) and attribute tokens t, over a candidate item c::

    u        = w_history · Σ_h a_h e_h + mean_t D[t]             user vector (``user_vector``)
    score(c) = e_c · u + w_pop · p[c] + w_neighbours · n(c)       with a history
    score(c) = e_c · u + w_pop_cold · p[c] + w_demo_cold · g(c)   without one

``e``: unit item embeddings (``embeddings.py``), ``a``: recency weights ``decay ** age``
normalised to 1, ``D``: token vectors (ridge from attribute tokens to users' history vectors,
pre-scaled by ``w_demo``), ``p``: log popularity, ``n(c)``: the candidate's neighbour score
with the user's recent items (``retrieval.candidate_features``), ``g(c)``: the mean of the
user's tokens' weights for c in a ridge regression from attribute tokens to the
``cold_items`` most popular items (``demographic.fit_demographic``, the dense hybrid's ridge
cold-start term restricted to the items a cold user is ever shown; not the token lift the
dense hybrid may choose, because the demographic candidates are the items g ranks highest on
its own, and a lift without popularity beside it ranks rare items first). Candidates come from
the ANN index (the first term), the neighbour lists (the neighbour term), the popular list
(the popularity term) and, for a user without history, the part of that demographic list
their tokens score highest (``retrieval.demographic_candidates``), so only a few hundred
items are scored per request. A user without history has only attribute tokens to go on, so
popularity and the demographic term get weights of their own there, tuned on users whose
whole history is held out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from app.features.schema import MODEL_HISTORY_ITEMS
from app.retrieval import (
    RetrievalArrays,
    RetrievalParams,
    VectorIndex,
    candidate_features,
    candidates,
)
from app.training.cooccurrence import cooccurrence_neighbours
from app.training.demographic import fit_demographic, mean_token_rows
from app.training.ease import ease_neighbours
from app.training.embeddings import item_embeddings
from app.training.hybrid import recency_weights
from app.training.popularity import PopularityModel
from app.training.recommender import Recommender
from app.training.statistics import InteractionStatistics
from app.training.types import TrainingData, Vocabulary

NeighbourSource = Literal["cooccurrence", "ease"]


@dataclass(frozen=True)
class TwoStageParams:
    """Hyperparameters of ``TwoStageRecommender``; recorded verbatim in the manifest."""

    dimensions: int = 64
    svd_iterations: int = 4
    history_max: int = MODEL_HISTORY_ITEMS
    history_decay: float = 0.9
    neighbours: int = 20
    neighbour_window: int = 5
    neighbour_decay: float = 0.7
    neighbour_smoothing: float = 5.0
    # Where the neighbour lists come from: co-occurrence within ``neighbour_window`` steps,
    # or EASE fitted on the ``ease_items`` most popular items (the others get no list).
    neighbour_source: NeighbourSource = "cooccurrence"
    ease_items: int = 5000
    ease_l2: float = 300.0
    demo_l2: float = 10.0
    w_history: float = 1.0
    w_demo: float = 0.5
    w_pop: float = 0.1
    w_neighbours: float = 1.0
    w_pop_cold: float = 1.0
    # The demographic lists: how many popular items, their ridge's λ, their weight for a user
    # without history (``demo_l2`` is the token vectors' λ).
    cold_items: int = 1000
    cold_l2: float = 10.0
    w_demo_cold: float = 0.0
    retrieval: RetrievalParams = field(default_factory=RetrievalParams)
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class TwoStageRecommender(Vocabulary, Recommender[TwoStageParams]):
    """Item embeddings + token vectors + neighbour lists + popularity, ranked linearly.

    Everything ending in ``_`` is learned by ``fit``. The ANN index is built from
    ``item_vectors_`` at export; until then ``ExactSearch`` stands in for it.
    """

    def __init__(self, params: TwoStageParams | None = None) -> None:
        self.params = params or TwoStageParams()
        super().__init__()
        self.item_vectors_: np.ndarray | None = None  # float16 [n_items, d]
        self.token_vectors_: np.ndarray | None = None  # float32 [n_tokens, d], w_demo folded in
        self.popularity_: np.ndarray | None = None
        self.popular_items_: np.ndarray | None = None
        self.neighbours_: np.ndarray | None = None
        self.neighbour_scores_: np.ndarray | None = None
        self.demographic_items_: np.ndarray | None = None  # int64 [cold_items], sorted
        self.demographic_weights_: np.ndarray | None = None  # float32 [n_tokens, cold_items]

    def fit(
        self, data: TrainingData, statistics: InteractionStatistics | None = None
    ) -> TwoStageRecommender:
        """Learn every array from ``data``; popularity and co-occurrence neighbours are
        counted by ``statistics`` when given, else in this process."""
        params = self.params
        interactions = data.interaction_matrix()
        vectors = item_embeddings(
            interactions, params.dimensions, iterations=params.svd_iterations, seed=params.seed
        ).astype(np.float16)
        histories = data.histories(max_items=params.history_max)
        popularity = (
            PopularityModel().fit(data)
            if statistics is None
            else PopularityModel.from_counts(statistics.popularity_counts(data, None), None)
        )
        self.item_ids_ = data.item_ids
        self.tokens_ = data.tokens
        self.item_vectors_ = vectors
        self.token_vectors_ = params.w_demo * token_vectors(
            data, self.history_vectors(histories, vectors), params.demo_l2
        )
        self.popularity_ = popularity.prior()
        self.popular_items_ = popularity.top_items()
        self.neighbours_, self.neighbour_scores_ = neighbour_lists(
            params, data, interactions, popularity, statistics
        )
        self.demographic_items_, columns = demographic_columns(
            data, interactions, popularity, params.cold_items
        )
        self.demographic_weights_ = demographic_weights(data, columns, params.cold_l2)
        return self

    def arrays(self, index: VectorIndex | None = None) -> RetrievalArrays:
        """The learned arrays as candidate generation reads them; ``index`` None: none."""
        if (
            self.item_vectors_ is None
            or self.popularity_ is None
            or self.popular_items_ is None
            or self.neighbours_ is None
            or self.neighbour_scores_ is None
            or self.demographic_items_ is None
            or self.demographic_weights_ is None
        ):
            raise RuntimeError("TwoStageRecommender is not fitted; call fit() first")
        return RetrievalArrays(
            item_vectors=self.item_vectors_,
            popularity=self.popularity_,
            popular=self.popular_items_.astype(np.int64),
            neighbours=self.neighbours_,
            neighbour_scores=self.neighbour_scores_,
            demographic_items=self.demographic_items_,
            demographic_weights=self.demographic_weights_,
            index=index,
        )

    def user_vector(self, history: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """``u`` (float32 [d]) for one user: the last ``history_max`` items, tokens by index."""
        vectors = self._fitted_vectors()
        history = np.asarray(history, dtype=np.int64)[-self.params.history_max :]
        from_history = np.zeros(vectors.shape[1], dtype=np.float64)
        if len(history):
            ages = np.arange(len(history) - 1, -1, -1, dtype=np.float64)
            weights = self.params.history_decay**ages
            from_history = (weights / weights.sum()) @ vectors[history].astype(np.float64)
        token_part = np.zeros(vectors.shape[1], dtype=np.float64)
        if len(tokens) and self.token_vectors_ is not None:
            token_part = self.token_vectors_[np.asarray(tokens, dtype=np.int64)].mean(axis=0)
        return (self.params.w_history * from_history + token_part).astype(np.float32)

    def score_items(self, history: np.ndarray, tokens: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (float64) of sorted unique ``items`` for one user."""
        arrays = self.arrays()
        features = candidate_features(arrays, self.params.retrieval, history, tokens, items)
        user = self.user_vector(history, tokens)
        return self._blend(user, items, features, has_history=len(history) > 0)

    def score(self, histories: Sequence[np.ndarray], tokens: Sequence[np.ndarray]) -> np.ndarray:
        """Exact scores of every item per user (``score_all``): the recommender contract's
        answer, which the two stages approximate."""
        exact = ExactSearch(self._fitted_vectors())
        rows = [self.score_all(h, t, exact) for h, t in zip(histories, tokens, strict=True)]
        return np.stack(rows) if rows else np.zeros((0, self.n_items))

    def score_all(self, history: np.ndarray, tokens: np.ndarray, exact: ExactSearch) -> np.ndarray:
        """Exact scores (float64) of every item, the embedding term from ``exact``'s float32
        copy of the vectors: what candidate generation and ranking approximate."""
        history = np.asarray(history, dtype=np.int64)[-self.params.history_max :]
        user = self.user_vector(history, tokens)
        items = np.arange(self.n_items)
        features = candidate_features(self.arrays(), self.params.retrieval, history, tokens, items)
        weights = self.feature_weights(has_history=len(history) > 0)
        return exact.similarities(user).astype(np.float64) + features.astype(np.float64) @ weights

    def feature_weights(self, *, has_history: bool) -> np.ndarray:
        """The weights of ``FEATURE_COLUMNS`` (popularity, affinity) for a user with a history
        (affinity: neighbours) or without one (affinity: demographic)."""
        params = self.params
        if has_history:
            return np.array([params.w_pop, params.w_neighbours])
        return np.array([params.w_pop_cold, params.w_demo_cold])

    def rank(
        self, history: np.ndarray, tokens: np.ndarray, index: VectorIndex
    ) -> tuple[np.ndarray, np.ndarray]:
        """The two stages: ``(candidates, their scores)``, the embedding candidates searched
        in ``index``: the ANN index, or ``ExactSearch`` (training has no index yet)."""
        history = np.asarray(history, dtype=np.int64)[-self.params.history_max :]
        user = self.user_vector(history, tokens)
        arrays = self.arrays(index)
        found = candidates(arrays, self.params.retrieval, user, history, tokens)
        features = candidate_features(arrays, self.params.retrieval, history, tokens, found)
        return found, self._blend(user, found, features, has_history=len(history) > 0)

    def _blend(
        self, user: np.ndarray, items: np.ndarray, features: np.ndarray, *, has_history: bool
    ) -> np.ndarray:
        vectors = self._fitted_vectors()
        embedding = vectors[items].astype(np.float64) @ user.astype(np.float64)
        weights = self.feature_weights(has_history=has_history)
        return np.asarray(embedding + features.astype(np.float64) @ weights, dtype=np.float64)

    def history_vectors(self, histories: list[np.ndarray], vectors: np.ndarray) -> np.ndarray:
        """Per user, ``Σ_h a_h e_h`` (float64 [users, d]) with ``history_decay`` weights."""
        weights = recency_weights(histories, len(vectors), self.params.history_decay)
        return np.asarray(weights @ vectors.astype(np.float32), dtype=np.float64)

    def _fitted_vectors(self) -> np.ndarray:
        if self.item_vectors_ is None:
            raise RuntimeError("TwoStageRecommender is not fitted; call fit() first")
        return self.item_vectors_


class ExactSearch:
    """Brute-force cosine search with the call shape of the usearch index ``ann_search``
    uses: the reference the ANN index's recall is measured against."""

    def __init__(self, item_vectors: np.ndarray) -> None:
        self._vectors = np.asarray(item_vectors, dtype=np.float32)
        self._empty = ~np.any(self._vectors != 0, axis=1)

    def __len__(self) -> int:
        return int((~self._empty).sum())

    def similarities(self, query: np.ndarray) -> np.ndarray:
        """``e_i · query`` for every item (float32)."""
        return self._vectors @ np.asarray(query, dtype=np.float32)

    def search(self, vectors: Any, count: int = 10) -> Any:
        scores = self.similarities(vectors)
        scores[self._empty] = -np.inf
        top = np.argpartition(-scores, count - 1)[:count]
        return _Matches(top[np.argsort(-scores[top], kind="stable")])


@dataclass(frozen=True)
class _Matches:
    keys: np.ndarray


def neighbour_lists(
    params: TwoStageParams,
    data: TrainingData,
    interactions: sp.csr_matrix,
    popularity: PopularityModel,
    statistics: InteractionStatistics | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The neighbour lists from ``params.neighbour_source``."""
    if params.neighbour_source == "ease":
        items = np.sort(popularity.top_items(params.ease_items)).astype(np.int64)
        return ease_neighbours(interactions, items, params.ease_l2, params.neighbours)
    if statistics is not None:
        return statistics.cooccurrence(
            data,
            params.neighbours,
            window=params.neighbour_window,
            distance_decay=params.neighbour_decay,
            smoothing=params.neighbour_smoothing,
        )
    return cooccurrence_neighbours(
        data.histories(max_items=len(data.item_index)),
        interactions.shape[1],
        params.neighbours,
        window=params.neighbour_window,
        distance_decay=params.neighbour_decay,
        smoothing=params.neighbour_smoothing,
    )


def demographic_columns(
    data: TrainingData, interactions: sp.csr_matrix, popularity: PopularityModel, n_items: int
) -> tuple[np.ndarray, sp.csr_matrix]:
    """The demographic lists' items, the ``n_items`` most popular (sorted indices; none
    without attribute tokens), and their columns of ``interactions``. Only those columns are
    fitted: a cold user is shown popular items, and [n_tokens, n_items] stays small whatever
    the catalogue."""
    if data.n_tokens and n_items > 0:
        items = np.sort(popularity.top_items(n_items)).astype(np.int64)
    else:
        items = np.empty(0, dtype=np.int64)
    return items, sp.csr_matrix(interactions[:, items])


def demographic_weights(data: TrainingData, columns: sp.csr_matrix, l2: float) -> np.ndarray:
    """Each attribute token's ridge weight for the listed items (float32 [n_tokens, D])."""
    if not data.n_tokens or not columns.shape[1]:
        return np.zeros((data.n_tokens, columns.shape[1]), dtype=np.float32)
    return fit_demographic(data.user_tokens, columns, l2)


def token_vectors(data: TrainingData, user_vectors: np.ndarray, l2: float) -> np.ndarray:
    """Ridge from users' mean token rows to their history vectors, centred like the dense
    demographic term: a cold user gets the mean user plus their group's deviation."""
    active = np.flatnonzero(np.bincount(data.user_index, minlength=data.n_users) > 0)
    features = mean_token_rows(data.user_tokens[active])
    targets = user_vectors[active]
    mean = targets.mean(axis=0) if len(active) else np.zeros(user_vectors.shape[1])
    gram = (features.T @ features).toarray()
    gram[np.diag_indices_from(gram)] += l2
    token_mass = np.asarray(features.sum(axis=0)).ravel()
    rhs = np.asarray(features.T @ targets) - np.outer(token_mass, mean)
    return (np.linalg.solve(gram, rhs) + mean[np.newaxis, :]).astype(np.float32)
