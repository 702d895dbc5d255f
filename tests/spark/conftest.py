"""One SparkSession (local[2]) for the whole test session, and the datasets both engines run
on: the synthetic shop (retail events, purchases, one category per item) and a
MovieLens-100k-shaped set (ratings in bursts, genre lists, no purchases), each ingested once.
The build test adds a third, smaller shop of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.data.ingest import ingest, load_dataset
from app.data.synthetic import generate_shop
from app.data.types import INTERACTIONS_FILE, Dataset
from app.settings import SparkSettings
from tests.spark.movielens_like import write_movielens_like

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Set to run the driver on fixed ports (this port and the next) instead of free ones.
PORT_VARIABLE = "RECSERVE_TEST_SPARK_PORT"


@dataclass(frozen=True)
class Ingested:
    name: str
    source: Path
    dataset: Dataset
    data_dir: Path
    as_of: datetime

    @property
    def interactions_path(self) -> Path:
        return self.data_dir / INTERACTIONS_FILE


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    from app.spark.session import spark_session

    conf = {"spark.sql.shuffle.partitions": "2"}
    port = os.environ.get(PORT_VARIABLE)
    if port:
        conf |= {"spark.driver.port": port, "spark.blockManager.port": str(int(port) + 1)}
    session = spark_session(SparkSettings(master="local[2]", conf=conf))
    yield session
    session.stop()


def _ingested(root: Path, name: str, source: Path) -> Ingested:
    data_dir = root / name / "data"
    ingest(source, data_dir)
    dataset = load_dataset(data_dir)
    newest = int(dataset.interactions["timestamp"].max())
    # Some interactions fall after as_of: both engines must leave the same ones out.
    as_of = datetime.fromtimestamp(newest - 3 * 86_400, tz=UTC)
    return Ingested(name, source, dataset, data_dir, as_of)


@pytest.fixture(scope="session", params=["shop", "movielens-like"])
def ingested(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "shop":
        source = generate_shop(root / "src", n_users=800, n_items=250, n_events=15_000, seed=5)
    else:
        source = write_movielens_like(root / "src", n_users=250, n_items=300, seed=7)
    return _ingested(root, request.param, source)
