"""Batch stages at scale on both engines: the synthetic shop grown to millions of events, each
heavy stage of ``recserve build`` timed on this process (``local``) and on Spark.

    python -m loadtests.batch_scale --events 5000000 --users 200000 --work /tmp/batch5m

Generates the shop once under ``--work`` (kept for the next run), then per engine times the
ingest (validation and deduplication of the interactions on that engine), the behaviour
features, the K-Means segments (k fixed, as with RECSERVE_SEGMENT_CLUSTERS) and the
popularity, transition and co-occurrence counts the final model fit reads, each as the build
runs it. Spark's session start is its own row; the engines must ingest the same data (the same
fingerprint). Prints one row per stage and writes ``--json``. Memory is the peak RSS of this
process (Spark's JVM is a child process: not included).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

ENGINES = ("local", "spark")
SEGMENTS = 5


@contextmanager
def timed(row: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    row[name] = round(time.perf_counter() - started, 1)
    print(f"  {name}: {row[name]} s", flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from app.data.ingest import ingest
    from app.data.synthetic import generate_shop
    from app.data.types import INTERACTIONS_FILE
    from app.features.offline import build_feature_tables
    from app.features.schema import USER_BEHAVIOUR_VIEW
    from app.settings import Settings, SparkSettings
    from app.training.engine import batch_engine
    from app.training.hybrid import HybridParams, fit_transition_matrix
    from app.training.segments import assign_segments
    from app.training.two_stage import TwoStageParams

    work: Path = args.work
    source = work / "src" / "shop"
    if not source.is_dir():
        generate_shop(
            work / "src", n_users=args.users, n_items=args.items, n_events=args.events, seed=1
        )
    shared: dict[str, float] = {}
    hybrid, two_stage = HybridParams(), TwoStageParams()
    spark = SparkSettings(master=args.spark_master, conf={"spark.driver.memory": args.memory})
    rows: dict[str, dict[str, float]] = {}
    reports: dict[str, Any] = {}
    indexed: tuple[Any, Any, datetime] | None = None
    for name in args.engines:
        print(f"engine {name}", flush=True)
        row: dict[str, float] = {}
        settings = Settings(home=work / "home", batch_engine=name, spark=spark)
        data_dir = work / f"data-{name}"
        started = time.perf_counter()
        with batch_engine(settings, work / f"scratch-{name}") as engine:
            row["start"] = round(time.perf_counter() - started, 1)
            with timed(row, "ingest (validate, deduplicate)"):
                reports[name] = ingest(
                    source, data_dir, interactions_validator=engine.interactions_validator
                )
            if indexed is None:  # every engine ingests the same data (checked below)
                indexed = _indexed(data_dir, shared)
            dataset, data, as_of = indexed
            with timed(row, "features"):
                features = build_feature_tables(
                    dataset,
                    work / f"offline-{name}",
                    as_of=as_of,
                    aggregate=engine.aggregator(data_dir / INTERACTIONS_FILE),
                )
            behaviour = pd.read_parquet(features.paths[USER_BEHAVIOUR_VIEW])
            with timed(row, "segments"):
                assign_segments(behaviour, n_clusters=SEGMENTS, kmeans=engine.kmeans)
            statistics = engine.statistics
            with timed(row, "popularity"):
                if statistics is None:
                    from app.training.popularity import PopularityModel

                    PopularityModel().fit(data)
                else:
                    statistics.popularity_counts(data, None)
            if data.n_items <= settings.dense_max_items:
                with timed(row, "transitions"):
                    _transitions(data, hybrid, statistics, fit_transition_matrix)
            with timed(row, "co-occurrence"):
                _cooccurrence(data, two_stage, statistics)
        row["total"] = round(sum(v for k, v in row.items()), 1)
        rows[name] = row
    fingerprints = {name: report.fingerprint for name, report in reports.items()}
    if len(set(fingerprints.values())) > 1:
        raise SystemExit(f"the engines ingested different data: {fingerprints}")
    report = reports[args.engines[0]]
    result = {
        "events": report.tables["interactions"].accepted,
        "users": report.distinct_users,
        "items": report.distinct_items,
        "spark_master": args.spark_master,
        "shared": shared,
        "engines": rows,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average": os.getloadavg()[0],
    }
    print_table(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _indexed(data_dir: Path, shared: dict[str, float]) -> tuple[Any, Any, datetime]:
    """The ingested dataset, its training data (indexing timed into ``shared``) and an as-of
    time after its last event."""
    from app.data.ingest import load_dataset
    from app.training.types import training_data_from

    dataset = load_dataset(data_dir)
    with timed(shared, "index training data"):
        data = training_data_from(dataset, {}, {})
    newest = int(dataset.interactions["timestamp"].max())
    return dataset, data, datetime.fromtimestamp(newest, tz=UTC) + timedelta(seconds=1)


def _transitions(data: Any, params: Any, statistics: Any, local: Callable[..., Any]) -> None:
    if statistics is None:
        sequences = data.histories_with_steps(max_items=len(data.item_index))
        local(sequences, data.n_items, params)
        return
    statistics.transitions(
        data,
        window=params.trans_window,
        distance_decay=params.trans_distance_decay,
        smoothing=params.trans_smoothing,
        same_step=params.trans_same_step,
    )


def _cooccurrence(data: Any, params: Any, statistics: Any) -> None:
    from app.training.cooccurrence import cooccurrence_neighbours

    kernel = {
        "window": params.neighbour_window,
        "distance_decay": params.neighbour_decay,
        "smoothing": params.neighbour_smoothing,
    }
    if statistics is None:
        histories = data.histories(max_items=len(data.item_index))
        cooccurrence_neighbours(histories, data.n_items, params.neighbours, **kernel)
    else:
        statistics.cooccurrence(data, params.neighbours, **kernel)


def print_table(result: dict[str, Any]) -> None:
    engines = result["engines"]
    stages = list(dict.fromkeys(s for row in engines.values() for s in row))
    print(f"\n{result['events']:,} events, {result['users']:,} users, {result['items']:,} items")
    for name, seconds in result["shared"].items():
        print(f"{name:<32} {seconds:>8.1f}")
    print(f"{'stage':<32}" + "".join(f"{name:>10}" for name in engines))
    for stage in stages:
        cells = "".join(f"{engines[name].get(stage, float('nan')):>10.1f}" for name in engines)
        print(f"{stage:<32}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--memory", default="6g", help="Spark driver memory (local mode)")
    parser.add_argument("--json", type=Path, default=None)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
