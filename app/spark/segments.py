"""K-Means of the RFM segments on Spark (``pyspark.ml``).

Spark's K-Means starts from k-means|| (a parallel k-means++) where scikit-learn takes the best
of four k-means++ starts, so the two engines may stop in different local optima: their
segments are compared by assignment quality (the same k, the same users in the same named
segment, within-cluster spread as low), not label by label. Segment names come from the
centroids' engagement either way (``app.training.segments``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MAX_ITERATIONS = 50
TOLERANCE = 1e-4


def spark_kmeans(spark: SparkSession) -> Callable[[np.ndarray, int, int], np.ndarray]:
    """A ``KMeansFit`` on ``spark``: (points, k, seed) -> one label per point, in order."""

    def fit(points: np.ndarray, k: int, seed: int) -> np.ndarray:
        from pyspark.ml.clustering import KMeans
        from pyspark.ml.feature import VectorAssembler

        columns = [f"x{d}" for d in range(points.shape[1])]
        frame = pd.DataFrame(points, columns=columns).assign(row=np.arange(len(points)))
        vectors = VectorAssembler(inputCols=columns, outputCol="features").transform(
            spark.createDataFrame(frame)
        )
        model = KMeans(k=k, seed=seed, maxIter=MAX_ITERATIONS, tol=TOLERANCE).fit(vectors)
        labels = model.transform(vectors).select("row", "prediction").toPandas()
        ordered = np.empty(len(points), dtype=np.int64)
        ordered[labels["row"].to_numpy()] = labels["prediction"].to_numpy()
        return ordered

    return fit
