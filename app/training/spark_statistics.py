"""``InteractionStatistics`` counted by Spark (``app.spark.statistics``).

The training data's index-space interactions are written once to Parquet under a scratch
directory, which Spark reads (on a cluster the directory must be on the shared file system,
as HOME is); the counted pairs come back and are shaped here exactly as the single-machine
functions shape theirs.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from app.spark import statistics as counts
from app.training.cooccurrence import top_per_row
from app.training.transitions import row_normalised
from app.training.types import TrainingData

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class SparkStatistics:
    """Counts on ``spark``; ``scratch_dir`` holds the interactions Spark reads (removed by
    ``close``)."""

    def __init__(self, spark: SparkSession, scratch_dir: Path) -> None:
        self.spark = spark
        self.scratch_dir = scratch_dir
        self._events: tuple[TrainingData, DataFrame] | None = None

    def popularity_counts(self, data: TrainingData, half_life_days: float | None) -> np.ndarray:
        return counts.popularity_counts(self._read(data), data.n_items, half_life_days)

    def transitions(
        self,
        data: TrainingData,
        *,
        window: int,
        distance_decay: float,
        smoothing: float,
        same_step: float,
    ) -> np.ndarray:
        if window < 1 or not 0.0 < distance_decay <= 1.0 or smoothing < 0 or same_step < 0:
            raise ValueError(
                f"need window >= 1, 0 < distance_decay <= 1, smoothing >= 0, same_step >= 0; "
                f"got {window}, {distance_decay}, {smoothing}, {same_step}"
            )
        pairs = counts.transition_counts(
            self._read(data), window=window, distance_decay=distance_decay, same_step=same_step
        )
        matrix = sp.csr_matrix(
            (pairs["weight"], (pairs["source"], pairs["target"])),
            shape=(data.n_items, data.n_items),
        )
        return row_normalised(matrix, smoothing)

    def cooccurrence(
        self, data: TrainingData, m: int, *, window: int, distance_decay: float, smoothing: float
    ) -> tuple[np.ndarray, np.ndarray]:
        if window < 1 or m < 1 or not 0.0 < distance_decay <= 1.0 or smoothing < 0:
            raise ValueError(
                f"need window >= 1, m >= 1, 0 < distance_decay <= 1, smoothing >= 0; got "
                f"{window}, {m}, {distance_decay}, {smoothing}"
            )
        best = counts.cooccurrence_top(
            self._read(data), m, window=window, distance_decay=distance_decay, smoothing=smoothing
        )
        return top_per_row(
            best["item"].to_numpy(dtype=np.int64),
            best["neighbour"].to_numpy(dtype=np.int32),
            best["score"].to_numpy(dtype=np.float32),
            data.n_items,
            m,
        )

    def close(self) -> None:
        if self._events is not None:
            self._events[1].unpersist()
        self._events = None
        shutil.rmtree(self.scratch_dir, ignore_errors=True)

    def _read(self, data: TrainingData) -> DataFrame:
        """``data``'s interactions as a cached Spark frame, written once per training data."""
        if self._events is not None and self._events[0] is data:
            return self._events[1]
        self.close()
        path = self.scratch_dir / f"interactions-{uuid.uuid4().hex[:8]}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.table(
            {
                counts.USER: pa.array(data.user_index, pa.int64()),
                counts.ITEM: pa.array(data.item_index, pa.int64()),
                counts.TIME: pa.array(data.timestamps, pa.int64()),
            }
        )
        pq.write_table(table, path)
        events = self.spark.read.parquet(str(path)).cache()
        self._events = (data, events)
        return events
