"""The Spark engine writes what the single-machine path writes: the same feature tables,
segments of the same quality, and the same popularity, transition and co-occurrence
statistics, on every dataset of ``conftest.ingested``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.features.offline import build_feature_tables
from app.features.schema import USER_BEHAVIOUR_VIEW
from app.training.cooccurrence import cooccurrence_neighbours
from app.training.popularity import PopularityModel
from app.training.segments import assign_segments, rfm_table
from app.training.spark_statistics import SparkStatistics
from app.training.transitions import fit_transitions
from app.training.types import TrainingData, training_data_from
from tests.spark.conftest import Ingested

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SEGMENTS = 4


@pytest.fixture(scope="module")
def statistics(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SparkStatistics]:
    counted = SparkStatistics(spark, tmp_path_factory.mktemp("scratch"))
    yield counted
    counted.close()


def _training_data(ingested: Ingested) -> TrainingData:
    return training_data_from(ingested.dataset, {}, {})


def _assert_same_table(local: pa.Table, spark: pa.Table, view: str) -> None:
    assert spark.schema == local.schema, view
    assert spark.num_rows == local.num_rows > 0, view
    for name in local.column_names:
        left, right = local.column(name).to_pylist(), spark.column(name).to_pylist()
        kind = local.schema.field(name).type
        is_float = pa.types.is_floating(kind) or (
            pa.types.is_list(kind) and pa.types.is_floating(kind.value_type)
        )
        if not is_float:
            assert right == left, f"{view}.{name}"
            continue
        rtol = 1e-6 if "float" in str(kind) and "double" not in str(kind) else 1e-9
        for a, b in zip(left, right, strict=True):
            assert (a is None) == (b is None), f"{view}.{name}"
            if a is not None:
                np.testing.assert_allclose(b, a, rtol=rtol, err_msg=f"{view}.{name}")


def test_feature_tables_are_the_same(
    spark: SparkSession, ingested: Ingested, tmp_path: Path
) -> None:
    from app.spark.features import spark_aggregates

    local = build_feature_tables(ingested.dataset, tmp_path / "local", as_of=ingested.as_of)
    counted = build_feature_tables(
        ingested.dataset,
        tmp_path / "spark",
        as_of=ingested.as_of,
        aggregate=spark_aggregates(spark, ingested.interactions_path),
    )
    assert counted.interactions_after_as_of == local.interactions_after_as_of > 0
    assert counted.rows == local.rows
    for view, path in local.paths.items():
        _assert_same_table(pq.read_table(path), pq.read_table(counted.paths[view]), view)


def _behaviour(ingested: Ingested, directory: Path) -> pd.DataFrame:
    report = build_feature_tables(ingested.dataset, directory, as_of=ingested.as_of)
    return pd.read_parquet(report.paths[USER_BEHAVIOUR_VIEW])


def _inertia(points: np.ndarray, labels: np.ndarray) -> float:
    return float(
        sum(
            ((points[labels == c] - points[labels == c].mean(axis=0)) ** 2).sum()
            for c in set(labels)
        )
    )


def test_segments_match_in_assignment_quality(
    spark: SparkSession, ingested: Ingested, tmp_path: Path
) -> None:
    """K-Means may stop in another local optimum on each engine, so the segments are compared
    by quality: the same named segments for nearly every user, the within-segment spread and
    the silhouette as good."""
    from app.spark.segments import spark_kmeans

    behaviour = _behaviour(ingested, tmp_path)
    local, local_report = assign_segments(behaviour, n_clusters=SEGMENTS)
    counted, report = assign_segments(behaviour, n_clusters=SEGMENTS, kmeans=spark_kmeans(spark))
    assert report.n_clusters == local_report.n_clusters == SEGMENTS
    assert float((counted["segment"] == local["segment"]).mean()) >= 0.95
    points = np.log1p(rfm_table(behaviour).to_numpy())
    spread = points.std(axis=0)
    points = (points - points.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    labels = counted["segment"].to_numpy()
    assert _inertia(points, labels) <= 1.02 * _inertia(points, local["segment"].to_numpy())
    assert report.silhouette is not None
    assert local_report.silhouette is not None
    assert report.silhouette >= local_report.silhouette - 0.02


def test_popularity_counts_are_the_same(statistics: SparkStatistics, ingested: Ingested) -> None:
    data = _training_data(ingested)
    for half_life_days in (None, 30.0):
        local = PopularityModel(half_life_days).fit(data)
        counted = PopularityModel.from_counts(
            statistics.popularity_counts(data, half_life_days), half_life_days
        )
        np.testing.assert_allclose(counted.counts_, local.counts_, rtol=1e-12)
        assert counted.top_items().tolist() == local.top_items().tolist()


def test_transitions_are_the_same(statistics: SparkStatistics, ingested: Ingested) -> None:
    """Within a window of steps, items of one step linked to each other too (same_step)."""
    data = _training_data(ingested)
    items, steps = data.histories_with_steps(max_items=len(data.item_index))
    kernel = {"window": 3, "distance_decay": 0.5, "smoothing": 5.0, "same_step": 0.5}
    local = fit_transitions(items, data.n_items, steps=steps, **kernel)
    counted = statistics.transitions(data, **kernel)
    assert counted.dtype == local.dtype
    assert counted.shape == local.shape
    assert np.count_nonzero(local) > data.n_items
    np.testing.assert_allclose(counted, local, rtol=1e-5, atol=1e-7)


def test_cooccurrence_neighbours_are_the_same(
    statistics: SparkStatistics, ingested: Ingested
) -> None:
    data = _training_data(ingested)
    m = 10
    # One list longer locally: a tie across the cut shows in its last column.
    local_items, local_scores = cooccurrence_neighbours(
        data.histories(max_items=len(data.item_index)),
        data.n_items,
        m + 1,
        window=5,
        distance_decay=0.7,
        smoothing=5.0,
    )
    items, scores = statistics.cooccurrence(data, m, window=5, distance_decay=0.7, smoothing=5.0)
    # Same scores in rank order; the same neighbours wherever the scores do not tie.
    np.testing.assert_allclose(scores, local_scores[:, :m], rtol=1e-5)
    ties = np.isclose(local_scores[:, :-1], local_scores[:, 1:], rtol=1e-5)
    untied = np.isfinite(local_scores[:, :m]) & ~ties[:, :m]
    untied[:, 1:] &= ~ties[:, : m - 1]
    assert untied.sum() > data.n_items
    assert (items[untied] == local_items[:, :m][untied]).all()
