"""Soak test: mixed ``/recommend`` and ``/events`` traffic at a fixed rate for a long time.

    python -m loadtests.soak --home HOME --redis-url URL [--duration 600] [--rate 100]
                             [--events-share 0.2] [--workers 2] [--window 60] [--json FILE]

``HOME`` must have been built with the same ``--redis-url`` (Redis is then the Feast online
store, the shared cache tier and the event log). The load is open loop (requests are due at a
fixed rate, so a server that slows down is charged for the queue it causes): Zipf-distributed
users, ~5% unknown, and a share of ``POST /events`` batches of 1-3 views and purchases of real
items by real users, each event with a fresh id so every batch is stored, folded into the
users' features and drops their cached lists. Not part of the test suite: run it on demand.

Reported per window (default a minute): requests, errors, p50/p99 latency, and the resident
memory of each uvicorn worker; then the totals and each worker's memory growth from the end
of the first window (start-up and warm-up allocations excluded) to the end.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import psutil
from prometheus_client.parser import text_string_to_metric_families

from loadtests.bench import zipf_user_stream
from loadtests.client import LoadResult, LoadSpec, recommend_requests, run_load
from loadtests.latency import percentiles
from loadtests.server import free_port, recserve_argv, running

EVENT_TYPES = ("view", "view", "view", "click", "add_to_cart", "purchase")


def post_request(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def mixed_requests(home: Path, n: int, events_share: float, seed: int = 0) -> list[bytes]:
    """``n`` requests in the order they are due: recommendations for a Zipf stream of users,
    with ``events_share`` of them replaced by event batches (unique event ids)."""
    users, ranked = zipf_user_stream(home, n, exponent=1.0, unknown_share=0.05, seed=seed)
    items = pd.read_parquet(home / "data" / "items.parquet", columns=["item_id"])
    item_ids = items["item_id"].astype(str).tolist()
    rng = np.random.default_rng(seed + 1)
    requests = recommend_requests(users)
    now = time.time()
    for slot in np.flatnonzero(rng.random(n) < events_share):
        user = ranked[int(rng.integers(len(ranked)))]
        events = [
            {
                "event_id": f"soak-{seed}-{slot}-{j}",
                "user_id": user,
                "item_id": item_ids[int(rng.integers(len(item_ids)))],
                "type": EVENT_TYPES[int(rng.integers(len(EVENT_TYPES)))],
                "timestamp": now,
            }
            for j in range(int(rng.integers(1, 4)))
        ]
        requests[slot] = post_request("/events", orjson.dumps({"events": events}))
    return requests


def worker_rss_mb(server_pid: int) -> dict[int, float]:
    """Resident memory of each process serving requests: the uvicorn workers, or the server
    itself when it has no child processes."""
    root = psutil.Process(server_pid)
    processes = root.children(recursive=True) or [root]
    rss = {}
    for process in processes:
        try:
            rss[process.pid] = process.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            continue
    return rss


def server_counters(port: int) -> dict[str, dict[str, float]]:
    """From the server's /metrics: answers other than 200 by endpoint and status, fallbacks by
    reason and cache errors by tier, which say where errors and degradations came from."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = {
        "recserve_api_requests_total": ("endpoint", "status"),
        "recserve_serving_fallbacks_total": ("reason",),
        "recserve_cache_errors_total": ("tier", "operation"),
    }
    counters: dict[str, dict[str, float]] = {name: {} for name in wanted}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = wanted.get(sample.name)
            if labels is None or sample.labels.get("status") == "200" or not sample.value:
                continue
            key = " ".join(sample.labels.get(label, "") for label in labels)
            counters[sample.name][key] = counters[sample.name].get(key, 0) + sample.value
    return counters


def windows(result: LoadResult, window_s: float, rss: Sequence[dict[int, float]]) -> list[dict]:
    """Cut a run's answers into consecutive windows of ``window_s`` seconds."""
    completed = np.asarray(result.completed_s)
    latencies = np.asarray(result.latencies_ms)
    failed = np.asarray(result.failed_s)
    rows = []
    for index, memory in enumerate(rss):
        start, end = index * window_s, (index + 1) * window_s
        inside = (completed >= start) & (completed < end)
        row: dict[str, Any] = {
            "window": index + 1,
            "requests": int(inside.sum()),
            "errors": int(((failed >= start) & (failed < end)).sum()),
            "rss_mb": {pid: round(mb, 1) for pid, mb in sorted(memory.items())},
        }
        if inside.any():
            stats = percentiles(latencies[inside].tolist())
            row |= {"p50_ms": stats["p50_ms"], "p99_ms": stats["p99_ms"]}
        rows.append(row)
    return rows


def soak(args: argparse.Namespace) -> dict[str, Any]:
    n_windows = max(1, round(args.duration / args.window))
    duration = n_windows * args.window
    requests = mixed_requests(args.home, int(args.rate * duration) + 1, args.events_share)
    port = free_port()
    env = {"RECSERVE_HOME": str(args.home), "RECSERVE_REDIS_URL": args.redis_url}
    with running(recserve_argv(port, args.workers), port, env=env) as proc:
        spec = LoadSpec(port, requests, args.connections, duration, args.rate)
        outcome: list[LoadResult] = []
        load = threading.Thread(target=lambda: outcome.append(run_load(spec, args.processes)))
        load.start()
        rss: list[dict[int, float]] = []
        started = time.monotonic()
        for index in range(1, n_windows + 1):  # sample memory at the end of each window
            time.sleep(max(0.0, started + index * args.window - time.monotonic()))
            rss.append(worker_rss_mb(proc.pid))
        load.join()
        counters = server_counters(port)
    result = outcome[0]
    rows = windows(result, args.window, rss)
    first, last = rss[0], rss[-1]
    return {
        "config": {
            "duration_s": duration,
            "rate_per_s": args.rate,
            "events_share": args.events_share,
            "workers": args.workers,
            "connections": args.connections,
        },
        "windows": rows,
        "total": {
            "requests": len(result.latencies_ms),
            "errors": result.errors,
            "statuses": result.statuses,
            **percentiles(result.latencies_ms),
        },
        "server": counters,
        "rss_growth_mb": {
            pid: round(last[pid] - first[pid], 1) for pid in sorted(first) if pid in last
        },
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"{'window':>6} {'requests':>9} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8}  worker RSS MB")
    for row in report["windows"]:
        memory = " ".join(f"{mb:.1f}" for mb in row["rss_mb"].values())
        p50, p99 = row.get("p50_ms", float("nan")), row.get("p99_ms", float("nan"))
        print(
            f"{row['window']:>6} {row['requests']:>9} {row['errors']:>6} {p50:>8.2f} "
            f"{p99:>8.2f}  {memory}"
        )
    total = report["total"]
    print(
        f"total: {total['requests']} requests, {total['errors']} errors "
        f"(statuses {total['statuses']}), p50 {total['p50_ms']} ms, p99 {total['p99_ms']} ms; "
        f"worker RSS growth after window 1: {report['rss_growth_mb']} MB"
    )
    for name, values in report["server"].items():
        print(f"{name} (non-200 / non-zero): {values}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--redis-url", required=True, help="the Redis HOME was built with")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--window", type=float, default=60.0, help="report window, seconds")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second, total")
    parser.add_argument("--events-share", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = soak(args)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
