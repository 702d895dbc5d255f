"""How the costs grow with the catalogue: build time by stage, model size on disk, memory per
worker, single-client ``/recommend`` latency with the cache off, and candidate recall.

    python -m loadtests.scale build --source SRC/shop --home HOME   # timed build
    python -m loadtests.scale measure --home H1 --home H2 ... [--json FILE]

``build`` runs ``recserve build`` in this process and keeps its stage timings and peak memory
in ``HOME/scale_build.json``; ``measure`` serves each home in turn (2 workers, cache off,
SQLite online store), sends ``--requests`` sequential requests over users with a history
after a warm-up, then reads each worker's resident (RSS) and proportional (PSS: shared pages
split between the processes mapping them) memory, and prints one table row per home.
Recall comes from the model's manifest, measured at export against exact search.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

from loadtests.latency import measure as measure_latency
from loadtests.latency import percentiles
from loadtests.server import free_port, process_memory, recserve_argv, running

BUILD_FILE = "scale_build.json"
WARMUP_REQUESTS = 300
COLUMNS = (
    ("items", "{:>9,}"),
    ("users", "{:>8,}"),
    ("events", "{:>10,}"),
    ("model", "{:>9}"),
    ("ingest_s", "{:>8.0f}"),
    ("features_s", "{:>10.0f}"),
    ("train_s", "{:>7.0f}"),
    ("export_s", "{:>8.0f}"),
    ("publish_s", "{:>9.0f}"),
    ("build_s", "{:>7.0f}"),
    ("disk_mb", "{:>7.0f}"),
    ("rss_mb", "{:>6.0f}"),
    ("pss_mb", "{:>6.0f}"),
    ("p50_ms", "{:>6.2f}"),
    ("p99_ms", "{:>6.2f}"),
    ("recall@10", "{:>9.3f}"),
    ("ann_recall", "{:>10.3f}"),
    ("load", "{:>4.1f}"),
)


# Smaller processes are uvicorn's supervisor and multiprocessing helpers, not workers.
WORKER_MIN_RSS_MB = 100


def timed_build(source: Path, home: Path) -> dict[str, Any]:
    """Build ``source`` into ``home``; the stage timings and peak RSS, also written to
    ``home/scale_build.json``."""
    from app.settings import Settings
    from app.training.pipeline import build

    os.environ["RECSERVE_HOME"] = str(home.resolve())
    started = time.perf_counter()
    result = build(Settings(home=home), source)
    report = {
        "seconds": {name: round(value, 1) for name, value in result.seconds.items()},
        "total_s": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average": os.getloadavg()[0],
    }
    print(result.format())
    (home / BUILD_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def measure_home(home: Path, requests: int, workers: int) -> dict[str, Any]:
    """One table row for a built ``home``."""
    from app.artifacts import current_version, read_manifest

    version = current_version(home / "models")
    if version is None:
        raise SystemExit(f"{home}: no published model")
    model_dir = home / "models" / version
    manifest = read_manifest(model_dir)
    interactions = pd.read_parquet(home / "data" / "interactions.parquet", columns=["user_id"])
    users = interactions["user_id"].drop_duplicates().sample(frac=1.0, random_state=0).tolist()
    build = json.loads((home / BUILD_FILE).read_text()) if (home / BUILD_FILE).exists() else {}
    port = free_port()
    env = {"RECSERVE_HOME": str(home.resolve()), "RECSERVE_CACHE__ENABLED": "false"}
    with running(recserve_argv(port, workers), port, env, timeout=600) as server:
        measure_latency(port, users[-WARMUP_REQUESTS:], WARMUP_REQUESTS)
        latencies, sources = measure_latency(port, users[:requests], requests)
        root = psutil.Process(server.pid)
        # The supervisor's children, or the server itself when it runs one worker in-process.
        family = process_memory(p.pid for p in root.children(recursive=True) or [root])
        memory = [m for m in family if m["rss_mb"] >= WORKER_MIN_RSS_MB]
        load = os.getloadavg()[0]
    timings = build.get("seconds", {})
    metrics = manifest.offline_metrics
    return {
        "items": manifest.n_items,
        "users": len(users),
        "events": len(interactions),
        "model": "2-stage" if manifest.model_type.startswith("two_stage") else "dense",
        "ingest_s": timings.get("ingest", float("nan")),
        "features_s": timings.get("features", float("nan")),
        "train_s": timings.get("train", float("nan")),
        "export_s": timings.get("export", float("nan")),
        # Versioning the tables, materialising the online store, publishing the model.
        "publish_s": timings.get("publish", float("nan")),
        "build_s": build.get("total_s", float("nan")),
        "build_peak_rss_mb": build.get("peak_rss_mb"),
        "build_load": build.get("load_average"),
        "disk_mb": sum(f.stat().st_size for f in model_dir.iterdir()) / 2**20,
        "rss_mb": max(m["rss_mb"] for m in memory),
        "pss_mb": max(m["pss_mb"] for m in memory),
        "workers": memory,
        **{k: v for k, v in percentiles(latencies).items() if k.endswith("_ms")},
        "sources": sources,
        "recall@10": metrics.get("candidate_recall@10", 1.0),
        "ann_recall": next((v for k, v in metrics.items() if k.startswith("ann_recall")), 1.0),
        "candidates_per_user": metrics.get("candidates_per_user"),
        "load": load,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print(" ".join(f"{name:>{len(fmt.format(0))}}" for name, fmt in COLUMNS))
    for row in rows:
        print(" ".join(fmt.format(row[name]) for name, fmt in COLUMNS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build a home and keep its stage timings")
    build.add_argument("--source", type=Path, required=True)
    build.add_argument("--home", type=Path, required=True)
    measure = sub.add_parser("measure", help="serve each home and print the table")
    measure.add_argument("--home", type=Path, action="append", required=True)
    measure.add_argument("--requests", type=int, default=1000)
    measure.add_argument("--workers", type=int, default=2)
    measure.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "build":
        print(json.dumps(timed_build(args.source, args.home), indent=2))
        return
    rows = [measure_home(home, args.requests, args.workers) for home in args.home]
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
