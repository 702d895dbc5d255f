"""The popularity model: the fallback list served when the hybrid cannot answer, and the
popularity prior ``p`` inside the hybrid.

Popularity is the number of distinct users per item, optionally recency-weighted: each user's
latest interaction with the item counts ``0.5 ** (age_days / half_life_days)``, age measured
from the newest interaction in the data.
"""

from __future__ import annotations

import numpy as np

from app.training.types import TrainingData

SECONDS_PER_DAY = 86_400
DEFAULT_TOP_N = 1000


class PopularityModel:
    """Rank items by (recency-weighted) distinct-user counts.

    Parameters
    ----------
    half_life_days:
        Age at which an interaction counts half; ``None`` counts every user equally.
    """

    def __init__(self, half_life_days: float | None = None) -> None:
        if half_life_days is not None and half_life_days <= 0:
            raise ValueError(f"half_life_days must be > 0, got {half_life_days}")
        self.half_life_days = half_life_days
        self.counts_: np.ndarray | None = None

    def fit(self, data: TrainingData) -> PopularityModel:
        """Count each item's users; learned state is ``counts_`` (float64, one per item)."""
        key = data.user_index * data.n_items + data.item_index
        # Time-sorted rows: the first hit in reversed order is each (user, item)'s last event.
        _, first_in_reversed = np.unique(key[::-1], return_index=True)
        last_rows = len(key) - 1 - first_in_reversed
        weights = np.ones(len(last_rows))
        if self.half_life_days is not None:
            age_days = (data.timestamps.max() - data.timestamps[last_rows]) / SECONDS_PER_DAY
            weights = 0.5 ** (age_days / self.half_life_days)
        self.counts_ = np.bincount(
            data.item_index[last_rows], weights=weights, minlength=data.n_items
        )
        return self

    @classmethod
    def from_counts(cls, counts: np.ndarray, half_life_days: float | None) -> PopularityModel:
        """A fitted model whose ``counts_`` were counted elsewhere (``fit``'s definition)."""
        model = cls(half_life_days)
        model.counts_ = np.asarray(counts, dtype=np.float64)
        return model

    def prior(self) -> np.ndarray:
        """Log popularity scaled to [0, 1] (float32), the hybrid's ``p``."""
        log_counts = np.log1p(self._counts())
        top = log_counts.max()
        return (log_counts / top if top > 0 else log_counts).astype(np.float32)

    def top_items(self, n: int = DEFAULT_TOP_N) -> np.ndarray:
        """Indices of the ``n`` most popular items with at least one user, best first; ties
        go to the lower index so the list is deterministic."""
        counts = self._counts()
        order = np.lexsort((np.arange(len(counts)), -counts))
        return order[counts[order] > 0][:n]

    def _counts(self) -> np.ndarray:
        if self.counts_ is None:
            raise RuntimeError("PopularityModel is not fitted; call fit() first")
        return self.counts_
