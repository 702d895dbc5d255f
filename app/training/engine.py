"""The engine of the heavy batch stages: this process (``local``) or Spark.

A ``BatchEngine`` holds, for each stage an engine can take over, the function that runs it
there; ``None`` is the single-machine code, which stays the default and needs nothing more
than the core install. Spark is imported only when ``batch_engine`` is ``spark``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from app.data.validate import InteractionsValidator
from app.features.offline import Aggregator
from app.settings import Settings
from app.training.segments import KMeansFit
from app.training.statistics import InteractionStatistics

SPARK_MISSING = (
    "the spark engine needs pyspark and a Java 17+ runtime: pip install 'recserve[spark]'"
)


class EngineUnavailable(RuntimeError):
    """The engine asked for cannot run here (Spark without pyspark installed)."""


@dataclass(frozen=True)
class BatchEngine:
    name: str
    # Validates and deduplicates the interactions file of an atomic source for ingest.
    interactions_validator: InteractionsValidator | None = None
    # interactions Parquet -> how the features count it.
    aggregate: Callable[[Path], Aggregator] | None = None
    kmeans: KMeansFit | None = None
    statistics: InteractionStatistics | None = None

    def aggregator(self, interactions_path: Path) -> Aggregator | None:
        return None if self.aggregate is None else self.aggregate(interactions_path)


LOCAL = BatchEngine("local")


@contextmanager
def batch_engine(settings: Settings, scratch_dir: Path) -> Iterator[BatchEngine]:
    """The engine ``settings.batch_engine`` names; Spark's writes what it reads under
    ``scratch_dir`` (removed at the end). Raises ``EngineUnavailable`` when Spark is asked
    for and cannot start (pyspark not installed, no Java)."""
    if settings.batch_engine == "local":
        yield LOCAL
        return
    from app.spark.features import spark_aggregates
    from app.spark.segments import spark_kmeans
    from app.spark.session import spark_session
    from app.spark.validate import spark_validate_interactions
    from app.training.spark_statistics import SparkStatistics

    try:
        spark = spark_session(settings.spark)
    except (ImportError, RuntimeError) as exc:  # no pyspark, or its JVM would not start
        raise EngineUnavailable(f"{SPARK_MISSING} ({exc})") from exc
    statistics = SparkStatistics(spark, scratch_dir)
    try:
        yield BatchEngine(
            "spark",
            interactions_validator=partial(
                spark_validate_interactions, spark, scratch_dir / "validation"
            ),
            aggregate=lambda path: spark_aggregates(spark, path),
            kmeans=spark_kmeans(spark),
            statistics=statistics,
        )
    finally:
        statistics.close()
