"""The recommender contract every model and baseline follows, in the style of ``implicit``:
hyperparameters at construction (``params``), ``fit(data)`` learns everything ending in
``_``, and batched ``score`` / ``recommend`` answer many users at once.

A user is described the way serving knows them: their history (item indices, oldest ->
newest) and their attribute tokens (indices into the fitted ``tokens_``), never a user id.
So a user the fit never saw, or one whose history changed since, is scored without
refitting, and the evaluation can ask every recommender the same question. Export to ONNX is
where a model is served (``export.export_model``, ``export_two_stage.export_two_stage``);
baselines are only evaluated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, Protocol, Self, TypeVar

import numpy as np

from app.training.metrics import top_k_excluding
from app.training.types import TrainingData


class Hyperparameters(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


P = TypeVar("P", bound=Hyperparameters)


class Recommender(ABC, Generic[P]):
    """Subclasses implement ``fit`` and ``score``; ``recommend`` ranks what ``score`` says.
    ``params`` holds the hyperparameters (``params.as_dict()`` for reports and manifests)."""

    params: P
    item_ids_: tuple[str, ...]
    tokens_: tuple[str, ...]

    @abstractmethod
    def fit(self, data: TrainingData) -> Self:
        """Learn from ``data`` with the hyperparameters given at construction."""

    @abstractmethod
    def score(self, histories: Sequence[np.ndarray], tokens: Sequence[np.ndarray]) -> np.ndarray:
        """Scores (float64, users x items) of every item for each user; ``-inf`` marks an
        item the recommender cannot rank. Raises ``RuntimeError`` before ``fit``."""

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        tokens: Sequence[np.ndarray],
        k: int = 10,
        exclude: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(item indices, scores)``, users x ``k``, best first, without each user's
        ``exclude`` items (default: their history). Where fewer than ``k`` items can be
        recommended the row is padded with index -1 and score ``-inf``."""
        if len(histories) != len(tokens):
            raise ValueError(f"{len(histories)} histories but {len(tokens)} token lists")
        scores = np.array(self.score(histories, tokens), dtype=np.float64)
        excluded = histories if exclude is None else exclude
        top = top_k_excluding(scores, [np.asarray(e, dtype=np.int64) for e in excluded], k)
        top_scores = np.take_along_axis(scores, top, axis=1)
        top[~np.isfinite(top_scores)] = -1
        return top, top_scores


def recommend_in_blocks(
    model: Recommender[Any],
    histories: Sequence[np.ndarray],
    tokens: Sequence[np.ndarray],
    k: int,
    *,
    block_cells: int = 1 << 25,
) -> list[list[str]]:
    """Item ids of ``model.recommend`` for many users, asking for at most ``block_cells``
    scores at a time (100k users x 30k items would otherwise be a 24 GB matrix)."""
    block = max(1, block_cells // max(1, len(model.item_ids_)))
    lists: list[list[str]] = []
    for start in range(0, len(histories), block):
        end = start + block
        top, _ = model.recommend(histories[start:end], tokens[start:end], k)
        lists += [[model.item_ids_[i] for i in row if i >= 0] for row in top]
    return lists
