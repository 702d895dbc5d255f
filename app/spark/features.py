"""The interaction aggregates of the offline feature tables, counted by Spark.

Same definitions as ``app.features.offline.local_aggregates``: a history is a user's distinct
items by last interaction, oldest -> newest (ties by item id), the newest
``HISTORY_MAX_ITEMS``; a category's score is its share of the user's interactions (an
interaction counts for each category of its item), the best ``TOP_CATEGORIES`` first, ties by
name. Spark reads the ingested Parquet itself; only the per-user rows come back to the driver,
which writes the single Parquet file per view that Feast's file source reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from app.data.types import EVENT_TYPE, ITEM_ID, TIMESTAMP, USER_ID, VALUE, Dataset
from app.features.offline import (
    FREQUENCY_WINDOW_SECONDS,
    PURCHASE,
    TOP_CATEGORIES,
    InteractionAggregates,
)
from app.features.schema import HISTORY_MAX_ITEMS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SECONDS_PER_DAY = 86_400.0
BEHAVIOUR_SCHEMA = pa.schema(
    [
        (USER_ID, pa.string()),
        ("history_items", pa.list_(pa.string())),
        ("history_timestamps", pa.list_(pa.int64())),
        ("interaction_count", pa.int64()),
        ("recency_days", pa.float64()),
        ("frequency_30d", pa.int64()),
        ("monetary", pa.float64()),
        ("last_event_at", pa.int64()),
        ("top_categories", pa.list_(pa.string())),
        ("top_category_scores", pa.list_(pa.float32())),
    ]
)


def spark_aggregates(
    spark: SparkSession, interactions_path: Path
) -> Callable[[Dataset, pd.DataFrame, int], InteractionAggregates]:
    """An ``Aggregator`` for ``build_feature_tables`` that counts ``interactions_path`` (the
    ingested interactions Parquet) on ``spark``; the dataset's own frame is not read."""

    def aggregate(
        dataset: Dataset, categories: pd.DataFrame, as_of_seconds: int
    ) -> InteractionAggregates:
        from pyspark.sql import functions as F

        events = spark.read.parquet(str(interactions_path)).select(
            USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE, VALUE
        )
        after = events.where(F.col(TIMESTAMP) > as_of_seconds).count()
        events = events.where(F.col(TIMESTAMP) <= as_of_seconds).cache()
        try:
            behaviour = _user_behaviour(spark, events, categories, as_of_seconds)
            items = (
                events.groupBy(ITEM_ID)
                .agg(F.count(F.lit(1)).alias("events"), F.max(TIMESTAMP).alias("last_at"))
                .toPandas()
                .set_index(ITEM_ID)
            )
        finally:
            events.unpersist()
        return InteractionAggregates(
            user_behaviour=behaviour,
            item_events=items["events"].astype("int64"),
            item_last_at=items["last_at"].astype("int64"),
            after_as_of=after,
        )

    return aggregate


def _user_behaviour(
    spark: SparkSession, events: DataFrame, categories: pd.DataFrame, as_of_seconds: int
) -> pa.Table:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    totals = events.groupBy(USER_ID).agg(
        F.count(F.lit(1)).alias("interaction_count"),
        F.max(TIMESTAMP).alias("last_event_at"),
        F.sum(
            F.when(F.col(TIMESTAMP) > as_of_seconds - FREQUENCY_WINDOW_SECONDS, 1).otherwise(0)
        ).alias("frequency_30d"),
        F.sum(F.when(F.col(EVENT_TYPE) == PURCHASE, F.col(VALUE)).otherwise(0.0)).alias("monetary"),
    )
    pairs = events.groupBy(USER_ID, ITEM_ID).agg(
        F.max(TIMESTAMP).alias("last_at"), F.count(F.lit(1)).alias("n")
    )
    newest_first = Window.partitionBy(USER_ID).orderBy(F.desc("last_at"), F.desc(ITEM_ID))
    # Sorting (time, id) structs ascending gives oldest -> newest with ties by item id.
    histories = (
        pairs.withColumn("rank", F.row_number().over(newest_first))
        .where(F.col("rank") <= HISTORY_MAX_ITEMS)
        .groupBy(USER_ID)
        .agg(F.sort_array(F.collect_list(F.struct("last_at", ITEM_ID))).alias("history"))
        .select(
            USER_ID,
            F.col(f"history.{ITEM_ID}").alias("history_items"),
            F.col("history.last_at").alias("history_timestamps"),
        )
    )
    top = _top_categories(spark, pairs, totals, categories)
    rows = (
        totals.join(histories, USER_ID)
        .join(top, USER_ID, "left")
        .select(
            USER_ID,
            "history_items",
            "history_timestamps",
            "interaction_count",
            ((F.lit(as_of_seconds) - F.col("last_event_at")) / SECONDS_PER_DAY).alias(
                "recency_days"
            ),
            "frequency_30d",
            "monetary",
            "last_event_at",
            F.coalesce("top_categories", F.array().cast("array<string>")).alias("top_categories"),
            F.coalesce("top_category_scores", F.array().cast("array<float>")).alias(
                "top_category_scores"
            ),
        )
        .orderBy(USER_ID)
    )
    return rows.toArrow().cast(BEHAVIOUR_SCHEMA)


def _top_categories(
    spark: SparkSession, pairs: DataFrame, totals: DataFrame, categories: pd.DataFrame
) -> DataFrame:
    """Per user, ``top_categories`` and ``top_category_scores`` (users without a category
    interaction have no row)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    item_category = spark.createDataFrame(
        categories[[ITEM_ID, "category"]].astype(str),
        schema=f"{ITEM_ID} string, category string",
    )
    best_first = Window.partitionBy(USER_ID).orderBy(F.desc("share"), F.asc("category"))
    scored = (
        pairs.join(F.broadcast(item_category), ITEM_ID)
        .groupBy(USER_ID, "category")
        .agg(F.sum("n").alias("n"))
        .join(totals.select(USER_ID, "interaction_count"), USER_ID)
        .withColumn("share", F.col("n") / F.col("interaction_count"))
        .withColumn("rank", F.row_number().over(best_first))
        .where(F.col("rank") <= TOP_CATEGORIES)
    )
    ranked = F.sort_array(F.collect_list(F.struct("rank", "category", "share")))
    return (
        scored.groupBy(USER_ID)
        .agg(ranked.alias("top"))
        .select(
            USER_ID,
            F.col("top.category").alias("top_categories"),
            F.col("top.share").cast("array<float>").alias("top_category_scores"),
        )
    )
