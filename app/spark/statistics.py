"""Popularity, transition and co-occurrence counts by Spark.

The input is the interactions in index space (``user``, ``item``, ``timestamp``: integer
columns), numbered as the training data numbers users and items. Spark does the counting over
all pairs; what comes back to the driver is one row per counted item pair (per item for
popularity), which ``app.training.spark_statistics`` turns into exactly what the
single-machine functions return. A history is a user's distinct items by last interaction,
oldest -> newest, ties by item index; a step groups the items whose last interactions share a
timestamp (``TrainingData.histories_with_steps``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

USER, ITEM, TIME = "user", "item", "timestamp"
SECONDS_PER_DAY = 86_400.0


def last_interactions(events: DataFrame) -> DataFrame:
    """One row per (user, item) with its last interaction time ``last_at``."""
    from pyspark.sql import functions as F

    return events.groupBy(USER, ITEM).agg(F.max(TIME).alias("last_at"))


def popularity_counts(events: DataFrame, n_items: int, half_life_days: float | None) -> np.ndarray:
    """Distinct users per item (float64, one per item), each user's last interaction weighted
    ``0.5 ** (age_days / half_life_days)`` from the newest interaction in the data."""
    from pyspark.sql import functions as F

    last = last_interactions(events)
    weight: Column = F.lit(1.0)
    if half_life_days is not None:
        newest = events.agg(F.max(TIME)).first()
        age_days = (F.lit(newest[0] if newest else 0) - F.col("last_at")) / SECONDS_PER_DAY
        weight = F.pow(F.lit(0.5), age_days / half_life_days)
    counts = last.groupBy(ITEM).agg(F.sum(weight).alias("n")).toPandas()
    return _dense(counts, n_items)


def transition_counts(
    events: DataFrame, *, window: int, distance_decay: float, same_step: float
) -> pd.DataFrame:
    """(``source``, ``target``, ``weight``) of ``fit_transitions`` before normalisation: x at
    step s leads to y at steps s+1 .. s+window with ``distance_decay ** (k - 1)``, and to the
    other items of its own step with ``same_step`` (when > 0). No item pairs with itself."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_time = Window.partitionBy(USER).orderBy("last_at")
    steps = last_interactions(events).withColumn("step", F.dense_rank().over(by_time))
    source, target = steps.alias("s"), steps.alias("t")
    distance = F.col("t.step") - F.col("s.step")
    nearest = 0 if same_step else 1
    pairs = source.join(
        target,
        (F.col("s.user") == F.col("t.user"))
        & (distance >= nearest)
        & (distance <= window)
        & (F.col("s.item") != F.col("t.item")),
    )
    weight = F.when(distance > 0, F.pow(F.lit(distance_decay), distance - 1)).otherwise(same_step)
    return (
        pairs.groupBy(F.col("s.item").alias("source"), F.col("t.item").alias("target"))
        .agg(F.sum(weight).alias("weight"))
        .toPandas()
    )


def cooccurrence_top(
    events: DataFrame, m: int, *, window: int, distance_decay: float, smoothing: float
) -> pd.DataFrame:
    """(``item``, ``neighbour``, ``score``) of ``cooccurrence_neighbours``, the best ``m`` per
    item: pairs at history distance k <= ``window`` count ``distance_decay ** (k - 1)`` both
    ways; a score is the pair's share of the item's counts plus ``smoothing``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    in_order = Window.partitionBy(USER).orderBy("last_at", ITEM)
    positions = last_interactions(events).withColumn("pos", F.row_number().over(in_order))
    first, second = positions.alias("a"), positions.alias("b")
    distance = F.col("b.pos") - F.col("a.pos")
    pairs = first.join(
        second,
        (F.col("a.user") == F.col("b.user")) & (distance >= 1) & (distance <= window),
    ).select(
        F.col("a.item").alias("x"),
        F.col("b.item").alias("y"),
        F.pow(F.lit(distance_decay), distance - 1).alias("w"),
    )
    both_ways = pairs.unionByName(pairs.select(F.col("y").alias("x"), F.col("x").alias("y"), "w"))
    counts = both_ways.groupBy("x", "y").agg(F.sum("w").alias("c"))
    best_first = Window.partitionBy("x").orderBy(F.desc("score"), F.asc("y"))
    return (
        counts.withColumn(
            "score", F.col("c") / (F.sum("c").over(Window.partitionBy("x")) + smoothing)
        )
        .withColumn("rank", F.row_number().over(best_first))
        .where(F.col("rank") <= m)
        .select(F.col("x").alias("item"), F.col("y").alias("neighbour"), "score")
        .toPandas()
    )


def _dense(counts: pd.DataFrame, n_items: int) -> np.ndarray:
    dense = np.zeros(n_items, dtype=np.float64)
    dense[counts[ITEM].to_numpy(dtype=np.int64)] = counts["n"].to_numpy(dtype=np.float64)
    return dense
