"""Two API replicas behind HAProxy against one host, in the same run, beside the ceiling.

    python -m loadtests.replicas --home HOME --redis-url URL --database-url URL
                                 [--duration 10] [--connections 32] [--json FILE]

``HOME`` is a built home whose online features are in the Redis at ``URL`` (built with
``--redis-url``). Both deployments use that Redis for every role and the PostgreSQL at
``--database-url`` for the records of truth (a schema made for the run and dropped after it),
with the same two uvicorn workers in all: the *single host* is one ``recserve serve
--workers 2``; the *replicas* are two ``recserve serve --workers 1``, each on its own copy of
the home (a host), behind HAProxy running deploy/haproxy/haproxy.cfg. The ceiling is the
trivial endpoint with two workers.

Per deployment, three loads (warm-up, closed loop, then open loop at half the single host's
full-pipeline maximum, as ``loadtests.bench`` runs them): the full pipeline (cache off, a
Zipf stream over every user), cache hits (a hot set), and ``POST /events`` batches of
``EVENTS_PER_POST`` new events. Each closed loop also reports the Redis commands and the
PostgreSQL transactions and rows per 1,000 requests (``loadtests.store_load``): give the
bench a Redis and a PostgreSQL of its own, their counters are server-wide.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg

from loadtests.bench import (
    Phases,
    ServerCpu,
    closed_then_open,
    print_table,
    process_tree_cpu,
    zipf_user_stream,
)
from loadtests.client import LoadSpec, recommend_requests
from loadtests.server import ceiling_argv, free_port, recserve_argv, running
from loadtests.store_load import every, postgres_activity, redis_commands
from loadtests.topology import SERVER_NAMES, SharedStores, replicas_behind_haproxy

WORKERS = 2  # in all, for each deployment and the ceiling
EVENTS_PER_POST = 5
EVENT_POSTS = 12_000  # distinct bodies per deployment: more than a phase sends


def post_request(path: str, body: bytes, host: str = "127.0.0.1") -> bytes:
    """The bytes of a keep-alive ``POST path`` with a JSON ``body``."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def event_requests(home: Path, prefix: str, posts: int) -> list[bytes]:
    """``posts`` ``POST /events`` of ``EVENTS_PER_POST`` views each, ids new to the log (made
    from ``prefix``), by users and of items of ``home``'s data."""
    interactions = pd.read_parquet(
        home / "data" / "interactions.parquet", columns=["user_id", "item_id"]
    )
    pairs = interactions.sample(posts * EVENTS_PER_POST, replace=True, random_state=0)
    now = time.time()
    requests = []
    rows = list(pairs.itertuples(index=False))
    for p in range(posts):
        batch = rows[p * EVENTS_PER_POST : (p + 1) * EVENTS_PER_POST]
        events = [
            {
                "event_id": f"{prefix}-{p}-{n}",
                "user_id": row.user_id,
                "item_id": row.item_id,
                "type": "view",
                "timestamp": now,
            }
            for n, row in enumerate(batch)
        ]
        requests.append(post_request("/events", json.dumps({"events": events}).encode()))
    return requests


@dataclass(frozen=True)
class Loads:
    """The request streams every deployment gets."""

    full: list[bytes]  # cache off: Zipf over every user, ~5% unknown
    hot: list[bytes]  # cache on: the hot set the warm-up already asked for


def home_copies(home: Path, directory: Path, names: Sequence[str]) -> list[Path]:
    """A copy of ``home`` per name (a host each), without its models (shared instead)."""
    copies = []
    for name in names:
        target = directory / name
        shutil.copytree(home, target, ignore=shutil.ignore_patterns("models"))
        copies.append(target)
    return copies


@contextmanager
def single_host(
    home: Path, shared: SharedStores, cache: bool, directory: Path
) -> Iterator[tuple[int, ServerCpu]]:
    """One ``recserve serve --workers 2`` on a copy of ``home``: its port and CPU reader."""
    (copy,) = home_copies(home, directory / f"single-{uuid.uuid4().hex[:6]}", ["host"])
    port = free_port()
    env = {**shared.env(), "RECSERVE_HOME": str(copy), "RECSERVE_CACHE__ENABLED": str(cache)}
    with running(recserve_argv(port, WORKERS), port, env=env, timeout=180) as proc:
        yield port, process_tree_cpu(proc)


@contextmanager
def two_replicas(
    home: Path, shared: SharedStores, cache: bool, directory: Path
) -> Iterator[tuple[int, ServerCpu]]:
    """Two one-worker replicas behind HAProxy: the balancer's port, and a CPU reader of the
    replicas and HAProxy together."""
    run_dir = directory / f"replicas-{uuid.uuid4().hex[:6]}"
    homes = home_copies(home, run_dir, SERVER_NAMES)
    env = {"RECSERVE_CACHE__ENABLED": str(cache)}
    with replicas_behind_haproxy(homes, shared, run_dir, extra_env=env) as topology:
        processes = [r.process for r in topology.replicas] + [topology.balancer.process]
        readers = [process_tree_cpu(process) for process in processes if process is not None]

        def cpu() -> dict[int, float]:
            return {pid: seconds for read in readers for pid, seconds in read().items()}

        yield topology.balancer.port, cpu


DEPLOYMENTS = (("single host", single_host), ("2 replicas + HAProxy", two_replicas))


def run(args: argparse.Namespace, shared: SharedStores, directory: Path) -> Phases:
    home = args.home.resolve()
    stream, ranked = zipf_user_stream(home, 20_000, 1.0, 0.05)
    loads = Loads(recommend_requests(stream), recommend_requests(ranked[:200]))
    counters = every([redis_commands(args.redis_url), postgres_activity(shared.database_url)])
    phases: Phases = {}
    rate: float | None = None
    for label, deployment in DEPLOYMENTS:
        for cache, name, requests in (
            (False, "full pipeline (cache off)", loads.full),
            (True, "cache hit (hot set)", loads.hot),
        ):
            with deployment(home, shared, cache, directory) as (port, cpu):
                spec = LoadSpec(port, requests, args.connections, args.duration)
                closed, opened = closed_then_open(spec, cpu, args, rate, counters)
            rate = rate or opened["target_rps"]
            phases[f"{label}: {name}, closed"] = closed
            phases[f"{label}: {name}, open"] = opened
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        events = event_requests(home, prefix, EVENT_POSTS)
        with deployment(home, shared, True, directory) as (port, cpu):
            spec = LoadSpec(port, events, args.connections, args.duration)
            closed, opened = closed_then_open(spec, cpu, args, None, counters)
        phases[f"{label}: POST /events x{EVENTS_PER_POST}, closed"] = closed
        phases[f"{label}: POST /events x{EVENTS_PER_POST}, open"] = opened
    port = free_port()
    with running(ceiling_argv(port, WORKERS), port) as proc:
        spec = LoadSpec(port, loads.full, args.connections, args.duration)
        ceiling, ceiling_open = closed_then_open(spec, process_tree_cpu(proc), args, rate)
    phases["ceiling, closed"] = ceiling
    phases["ceiling, open"] = ceiling_open
    for summary in phases.values():
        summary["x_ceiling"] = round(summary["rps"] / ceiling["rps"], 3)
    return phases


def print_store_load(phases: Phases) -> None:
    print("store load per 1,000 requests (closed loops; Redis commands, PostgreSQL activity)")
    for name, summary in phases.items():
        load = summary.get("store_per_1k_requests")
        if load is not None:
            shown = ", ".join(f"{counter} {value:g}" for counter, value in load.items())
            print(f"{name}: {shown}")


def drop_schema(database_url: str, schema: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="a home built on --redis-url")
    parser.add_argument("--redis-url", required=True, help="the bench's own Redis")
    parser.add_argument("--database-url", required=True, help="the bench's own PostgreSQL")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each phase")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    if not (args.home / "data" / "interactions.parquet").is_file():
        parser.error(f"--home {args.home}: not a built home (no data/interactions.parquet)")
    # What loadtests.bench's table header reads.
    args.workers, args.redis_home, args.url = WORKERS, None, None

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="recserve-replicas-") as scratch:
        shared = SharedStores(
            args.redis_url, args.database_url, schema, args.home.resolve() / "models"
        )
        try:
            phases = run(args, shared, Path(scratch))
        finally:
            drop_schema(args.database_url, schema)
    print_table(phases, args)
    print_store_load(phases)
    print(f"load average before {load_before}, after {os.getloadavg()}")
    if args.json:
        report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
        report |= {"load_average_before": list(load_before), "phases": phases}
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
