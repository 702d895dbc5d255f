"""The counting statistics a final model fit reads, from whichever engine counts them.

``fit`` of the hybrid and the two-stage model count popularity, transitions and
co-occurrence neighbours in this process unless handed an ``InteractionStatistics`` (the Spark
engine's is ``app.training.spark_statistics.SparkStatistics``). Every implementation returns
what the single-machine functions return for the same data.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from app.training.types import TrainingData


class InteractionStatistics(Protocol):
    def popularity_counts(self, data: TrainingData, half_life_days: float | None) -> np.ndarray:
        """``PopularityModel(half_life_days).fit(data).counts_``."""
        ...

    def transitions(
        self,
        data: TrainingData,
        *,
        window: int,
        distance_decay: float,
        smoothing: float,
        same_step: float,
    ) -> np.ndarray:
        """``fit_transitions`` over ``data.histories_with_steps`` (every item, with steps)."""
        ...

    def cooccurrence(
        self, data: TrainingData, m: int, *, window: int, distance_decay: float, smoothing: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """``cooccurrence_neighbours`` over ``data.histories`` (every item)."""
        ...
