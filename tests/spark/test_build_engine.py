"""``recserve build --engine spark`` publishes a model whose offline tables are the ones the
single-machine path computes from the same ingested data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest

from app.data.ingest import ingest, load_dataset
from app.data.synthetic import generate_shop
from app.features.offline import build_feature_tables
from app.features.schema import EVENT_TIMESTAMP, ITEM_FEATURES_VIEW, USER_BEHAVIOUR_VIEW
from app.jobs import add_engine_arguments, with_engine
from app.settings import Settings
from app.training.engine import EngineUnavailable, batch_engine
from app.training.pipeline import build
from tests.spark.test_parity import _assert_same_table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def test_engine_flags_override_the_settings() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    settings = Settings()
    chosen = with_engine(
        settings, parser.parse_args(["--engine", "spark", "--spark-master", "spark://h:7077"])
    )
    assert chosen.batch_engine == "spark"
    assert chosen.spark.master == "spark://h:7077"
    assert with_engine(settings, parser.parse_args([])) == settings
    with pytest.raises(SystemExit):
        parser.parse_args(["--engine", "dask"])


def test_spark_without_pyspark_is_a_named_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from app.spark import session

    def missing(_: object) -> None:
        raise ImportError("No module named 'pyspark'")

    monkeypatch.setattr(session, "spark_session", missing)
    settings = Settings(home=tmp_path, batch_engine="spark")
    with (
        pytest.raises(EngineUnavailable, match=r"pip install 'recserve\[spark\]'"),
        batch_engine(settings, tmp_path / "scratch"),
    ):
        pass
    with batch_engine(settings.model_copy(update={"batch_engine": "local"}), tmp_path) as local:
        assert local.statistics is None
        assert local.interactions_validator is None
        assert local.aggregator(tmp_path / "x.parquet") is None


def test_a_spark_build_publishes_the_tables_the_local_path_computes(
    spark: SparkSession, tmp_path: Path
) -> None:
    source = generate_shop(tmp_path / "src", n_users=150, n_items=80, n_events=3_000, seed=9)
    settings = Settings(home=tmp_path / "home", batch_engine="spark", segment_clusters=3)

    result = build(settings, source, tuning_budget_seconds=3)

    assert result.engine == "spark"
    assert result.ingest.fingerprint == ingest(source, tmp_path / "local-data").fingerprint
    assert "timings (spark engine)" in result.format()
    assert result.model_dir.is_dir()
    published = {
        view: pq.read_table(settings.offline_dir / f"{view}.parquet")
        for view in (USER_BEHAVIOUR_VIEW, ITEM_FEATURES_VIEW)
    }
    as_of = published[USER_BEHAVIOUR_VIEW].column(EVENT_TIMESTAMP)[0].as_py()
    local = build_feature_tables(load_dataset(settings.data_dir), tmp_path / "local", as_of=as_of)
    for view, table in published.items():
        _assert_same_table(pq.read_table(local.paths[view]), table, view)
    # The scratch Parquet Spark read the training data from is gone with the staging.
    assert not list(settings.versions_dir.glob(".staging-*"))
