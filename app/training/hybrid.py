"""The linear hybrid recommender: the numpy reference of what ``model.onnx`` computes.

For a user with history items h (oldest -> newest) and attribute tokens t::

    score(i) = w_ease  * N(Σ_h a_h · (B + βC)[h, i])   EASE + content neighbours
             + w_trans * Σ_r d_r · T[r, i]             next-item transitions
             + w_seq   * Σ_q s_q · S[q, i]             next-items regression
             + w_demo  * Σ_t W[t, i] / |t|             demographic (ridge or token lift)
             + w_pop   * p[i]                          log popularity

``a``, ``d`` and ``s`` are recency weights ``decay ** age`` (age 0 = newest) over each term's
own window of the newest items, normalised to sum 1; each term has its own decay and window
(decay 1 and the whole stored history: every item counts alike). ``N`` is the identity, or
(``ease_norm="max"``) division by the term's largest absolute score for this user, which puts
the EASE term on the same scale for a user with ten items as for one with five hundred.
The user is represented only through features, never a user-id embedding, so a brand-new user
with attributes, or one whose history just changed, is scored without retraining.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from app.features.schema import MODEL_HISTORY_ITEMS
from app.training.content import content_similarity
from app.training.demographic import DemographicModel, fit_token_items
from app.training.ease import check_dense_size, fit_ease
from app.training.popularity import PopularityModel
from app.training.recommender import Recommender
from app.training.sequential import fit_next_items
from app.training.statistics import InteractionStatistics
from app.training.transitions import fit_transitions
from app.training.types import TrainingData, Vocabulary

# The cut tuning offers besides the whole window: a recency weight below this fraction of
# the newest item's is not worth reading a matrix row for (with decay 0.95 the 59 newest items
# carry 95% of the weight), and memory traffic is most of the cost of a score
# (docs/benchmarks.md).
NEGLIGIBLE_WEIGHT = 5e-2
TermNorm = Literal["sum", "max"]
# Guards the max normalisation of a term whose scores are all zero (an empty history).
NORM_EPSILON = 1e-12


def weighted_window(limit: int, decay: float) -> int:
    """How many of the newest items carry all but ``NEGLIGIBLE_WEIGHT`` of a term weighted
    ``decay ** age``: at most ``limit``."""
    if decay >= 1.0:
        return limit
    if decay <= 0.0:
        return min(limit, 1)
    return min(limit, math.ceil(math.log(NEGLIGIBLE_WEIGHT) / math.log(decay)))


@dataclass(frozen=True)
class HybridParams:
    """Hyperparameters of ``HybridRecommender``; recorded verbatim in the manifest.

    Each history term reads its own window of the newest items with its own decay: EASE +
    content (``ease_*``), the next-items regression (``seq_*``, which also trains with that
    decay) and the transitions (``trans_last``, ``trans_decay``). When EASE and the
    regression share decay, window and the plain sum normalisation, the graph folds their
    matrices into one and gathers each row once (``folds_next_items``).
    """

    ease_l2: float = 300.0
    content_beta: float = 0.0
    history_max: int = MODEL_HISTORY_ITEMS
    ease_decay: float = 0.95
    ease_window: int = 59
    ease_norm: TermNorm = "sum"
    trans_last: int = 10
    trans_decay: float = 0.8
    trans_window: int = 5
    trans_distance_decay: float = 0.5
    trans_smoothing: float = 5.0
    trans_same_step: float = 0.0
    seq_decay: float = 0.95
    seq_window: int = 59
    seq_last: int = 100
    seq_horizon: int = 20
    seq_step: int = 5
    seq_l2: float = 1.0
    # Cut the regression's samples only between steps (a basket is never split into its own
    # past and future), or every ``seq_step`` items, the rest of a basket then being part of
    # what follows the cut.
    seq_whole_steps: bool = True
    demo_model: DemographicModel = "ridge"
    demo_strength: float = 100.0  # the ridge's λ, or the lift's shrinkage in pseudo-users
    popularity_half_life_days: float | None = None
    w_ease: float = 1.0
    w_trans: float = 1.0
    w_seq: float = 0.0
    w_demo: float = 0.05
    w_pop: float = 0.05
    max_dense_items: int = 20_000

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def ease_items(self) -> int:
        """Newest history items the EASE + content term reads."""
        return min(self.ease_window, self.history_max)

    @property
    def seq_items(self) -> int:
        """Newest history items the next-items regression reads (none when weighted 0)."""
        return min(self.seq_window, self.history_max) if self.w_seq else 0

    @property
    def trans_items(self) -> int:
        """Newest history items the transitions term reads."""
        return min(self.trans_last, self.history_max)

    @property
    def folds_next_items(self) -> bool:
        """Whether the next-items regression reads exactly the EASE term's weights, so the
        graph can gather one row of ``w_ease (B + βC) + w_seq S`` per history item."""
        return not self.w_seq or (
            self.seq_decay == self.ease_decay
            and self.seq_items == self.ease_items
            and self.ease_norm == "sum"
        )

    @property
    def read_items(self) -> int:
        """Newest history items the model reads at all: what serving needs to send."""
        return max(self.ease_items, self.trans_items, self.seq_items)


@dataclass(frozen=True)
class HybridMatrices:
    """The learned weights, unblended: ``item_item`` = B + βC, ``transitions`` = T,
    ``sequential`` = S (all items x items), ``demographic`` = W (tokens x items) and
    ``popularity`` = p (items)."""

    item_item: np.ndarray
    transitions: np.ndarray
    sequential: np.ndarray
    demographic: np.ndarray
    popularity: np.ndarray


class HybridRecommender(Vocabulary, Recommender[HybridParams]):
    """EASE + content + transitions + next-items regression + demographic + popularity,
    blended linearly.

    Hyperparameters come from ``params``; everything ending in ``_`` is learned by ``fit``.
    Items and tokens are addressed by index (``item_ids_[i]``, ``tokens_[t]``).
    """

    def __init__(self, params: HybridParams | None = None) -> None:
        self.params = params or HybridParams()
        super().__init__()
        self.item_item_: np.ndarray | None = None
        self.transitions_: np.ndarray | None = None
        self.sequential_: np.ndarray | None = None
        self.demographic_: np.ndarray | None = None
        self.popularity_: np.ndarray | None = None
        self.popular_items_: np.ndarray | None = None

    def fit(
        self, data: TrainingData, statistics: InteractionStatistics | None = None
    ) -> HybridRecommender:
        """Learn every matrix from ``data`` with the current hyperparameters; popularity and
        transitions are counted by ``statistics`` when given, else in this process."""
        params = self.params
        check_dense_size(data.n_items, params.max_dense_items)
        interactions = data.interaction_matrix()
        item_item = fit_ease(interactions, params.ease_l2)
        if params.content_beta:
            item_item += np.float32(params.content_beta) * content_similarity(data.item_tokens)
        half_life = params.popularity_half_life_days
        if statistics is None:
            popularity = PopularityModel(half_life).fit(data)
        else:
            counted = statistics.popularity_counts(data, half_life)
            popularity = PopularityModel.from_counts(counted, half_life)
        self.item_ids_ = data.item_ids
        self.tokens_ = data.tokens
        sequences = data.histories_with_steps(max_items=len(data.item_index))
        self.item_item_ = item_item
        self.sequential_ = fit_sequential(sequences, data.n_items, params)
        self.transitions_ = (
            fit_transition_matrix(sequences, data.n_items, params)
            if statistics is None
            else statistics.transitions(
                data,
                window=params.trans_window,
                distance_decay=params.trans_distance_decay,
                smoothing=params.trans_smoothing,
                same_step=params.trans_same_step,
            )
        )
        self.demographic_ = fit_token_items(
            params.demo_model, params.demo_strength, data.user_tokens, interactions
        )
        self.popularity_ = popularity.prior()
        self.popular_items_ = popularity.top_items()
        return self

    def score(self, histories: Sequence[np.ndarray], tokens: Sequence[np.ndarray]) -> np.ndarray:
        """Scores (float64, users x items) for a batch of users.

        ``histories[u]``: item indices oldest -> newest (each term reads only its window of
        the newest: ``HybridParams.ease_items`` and the like); ``tokens[u]``: attribute-token
        indices. Either may be empty.
        """
        m = self.matrices()
        if len(histories) != len(tokens):
            raise ValueError(f"{len(histories)} histories but {len(tokens)} token lists")
        params = self.params
        histories = [np.asarray(h, dtype=np.int64)[-params.read_items :] for h in histories]
        _check_indices(histories, self.n_items, "history item")
        _check_indices(tokens, self.n_tokens, "user token")
        scores = params.w_ease * normalised(
            _newest(histories, params.ease_items, params.ease_decay, self.n_items) @ m.item_item,
            params.ease_norm,
        )
        if params.w_seq:
            scores += params.w_seq * (
                _newest(histories, params.seq_items, params.seq_decay, self.n_items) @ m.sequential
            )
        scores += params.w_trans * (
            _newest(histories, params.trans_items, params.trans_decay, self.n_items) @ m.transitions
        )
        scores += params.w_demo * (mean_token_weights(tokens, self.n_tokens) @ m.demographic)
        scores += params.w_pop * m.popularity.astype(np.float64)
        return np.asarray(scores, dtype=np.float64)

    def matrices(self) -> HybridMatrices:
        """The learned weights, unblended; raises if ``fit`` has not run."""
        if (
            self.item_item_ is None
            or self.transitions_ is None
            or self.sequential_ is None
            or self.demographic_ is None
            or self.popularity_ is None
        ):
            raise RuntimeError("HybridRecommender is not fitted; call fit() first")
        return HybridMatrices(
            self.item_item_,
            self.transitions_,
            self.sequential_,
            self.demographic_,
            self.popularity_,
        )


Steps = tuple[Sequence[np.ndarray], Sequence[np.ndarray]]


def fit_transition_matrix(sequences: Steps, n_items: int, params: HybridParams) -> np.ndarray:
    """The transitions T with the ``trans_*`` hyperparameters of ``params``, from
    ``(sequences, steps)`` as ``TrainingData.histories_with_steps`` gives them."""
    items, steps = sequences
    return fit_transitions(
        items,
        n_items,
        window=params.trans_window,
        distance_decay=params.trans_distance_decay,
        smoothing=params.trans_smoothing,
        steps=steps,
        same_step=params.trans_same_step,
    )


def fit_sequential(sequences: Steps, n_items: int, params: HybridParams) -> np.ndarray:
    """The next-items regression S with the ``seq_*`` hyperparameters of ``params``, from
    ``(sequences, steps)`` as ``TrainingData.histories_with_steps`` gives them."""
    items, steps = sequences
    return fit_next_items(
        items,
        n_items,
        decay=params.seq_decay,
        context=params.seq_last,
        horizon=params.seq_horizon,
        step=params.seq_step,
        l2=params.seq_l2,
        steps=steps if params.seq_whole_steps else None,
    )


def normalised(scores: np.ndarray | sp.spmatrix, norm: TermNorm) -> np.ndarray:
    """A term's scores (users x items) as the blend adds them: unchanged (``sum``: the
    recency weights already sum to 1) or divided per user by the largest absolute score."""
    scores = np.asarray(scores, dtype=np.float64)
    if norm == "sum":
        return scores
    peak = np.abs(scores).max(axis=1, keepdims=True) if scores.shape[1] else 1.0
    return scores / np.maximum(peak, NORM_EPSILON)


def _newest(
    histories: Sequence[np.ndarray], items: int, decay: float, n_items: int
) -> sp.csr_matrix:
    return recency_weights([h[len(h) - min(items, len(h)) :] for h in histories], n_items, decay)


def recency_weights(histories: Sequence[np.ndarray], n_items: int, decay: float) -> sp.csr_matrix:
    """Users x items matrix of ``decay ** age`` (age 0 = last element), rows summing to 1."""
    lengths = np.array([len(h) for h in histories], dtype=np.int64)
    ends = np.cumsum(lengths)
    rows = np.repeat(np.arange(len(histories)), lengths)
    ages = np.repeat(ends, lengths) - np.arange(ends[-1] if len(ends) else 0) - 1
    weights = np.power(float(decay), ages.astype(np.float64))
    totals = np.bincount(rows, weights=weights, minlength=len(histories))
    columns = np.concatenate([*histories, np.empty(0, dtype=np.int64)])
    return sp.csr_matrix((weights / totals[rows], (rows, columns)), shape=(len(histories), n_items))


def mean_token_weights(tokens: Sequence[np.ndarray], n_tokens: int) -> sp.csr_matrix:
    """Users x tokens matrix with ``1 / |tokens|`` at each of the user's tokens."""
    lengths = np.array([len(t) for t in tokens], dtype=np.int64)
    rows = np.repeat(np.arange(len(tokens)), lengths)
    columns = np.concatenate([*tokens, np.empty(0, dtype=np.int64)]).astype(np.int64)
    values = 1.0 / lengths[rows]
    return sp.csr_matrix((values, (rows, columns)), shape=(len(tokens), n_tokens))


def _check_indices(arrays: Sequence[np.ndarray], size: int, what: str) -> None:
    for row, array in enumerate(arrays):
        if len(array) and (np.min(array) < 0 or np.max(array) >= size):
            raise ValueError(f"user {row}: {what} index out of range [0, {size}): {array}")
