"""Event ingestion under load: ``POST /events`` batches against one worker and real Redis.

    python -m loadtests.ingest --home HOME --redis-url redis://127.0.0.1:6379/14
                               [--batch 100] [--rate-events 5000] [--duration 20]

``HOME`` must have been built with the same ``RECSERVE_REDIS_URL`` (the online store the
events update). The server runs one uvicorn worker with the Redis Stream event log under a
fresh stream key, deleted afterwards with its dedupe keys. Every request carries ``--batch``
new events (unique ids, Zipf-distributed users of the home, random catalogue items), so the
whole path runs each time: validation, durable append, Feast push, cache invalidation.

Phases: closed loop (``--connections`` clients back to back: the maximum), then open loop at
``--rate-events`` events/s, where acknowledgement latency counts from each request's due time.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import redis

from loadtests.bench import measure_phase, process_tree_cpu, zipf_user_stream
from loadtests.client import LoadSpec, run_load
from loadtests.server import free_port, recserve_argv, running

# Event times move forward request by request from the start of the run, as in a live stream,
# 1 ms apart: slower than the wall clock below 1,000 requests/s, so each run's events are newer
# than everything earlier runs stored. (Stamped back in time instead, they were older than the
# last run's, and every merge re-sorted the user's whole stored history: the cost of late
# events, not of a live stream; it halved throughput in 60 s runs.) A busy user's events within
# one millisecond tie, as they can live.
REQUEST_SPACING_S = 0.001


def post_request(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def event_requests(home: Path, n_requests: int, batch: int, seed: int = 0) -> list[bytes]:
    """``n_requests`` pre-built ``POST /events`` of ``batch`` distinct new events each,
    stamped ``REQUEST_SPACING_S`` apart from now on."""
    users, _ = zipf_user_stream(home, n_requests * batch, 1.0, 0.0, seed)
    items = pd.read_parquet(home / "data" / "items.parquet", columns=["item_id"])["item_id"]
    rng = np.random.default_rng(seed)
    picks = items.astype(str).to_numpy()[rng.integers(len(items), size=n_requests * batch)]
    kinds = rng.choice(
        ["view", "click", "add_to_cart", "purchase"],
        p=[0.7, 0.2, 0.07, 0.03],
        size=n_requests * batch,
    )
    run = time.time_ns()
    start = time.time()
    requests = []
    for r in range(n_requests):
        events = [
            {
                "event_id": f"bench-{run}-{r}-{e}",
                "user_id": users[r * batch + e],
                "item_id": picks[r * batch + e],
                "type": kinds[r * batch + e],
                "timestamp": start + r * REQUEST_SPACING_S,
                **({"value": 9.99} if kinds[r * batch + e] == "purchase" else {}),
            }
            for e in range(batch)
        ]
        requests.append(post_request("/events", orjson.dumps({"events": events})))
    return requests


def run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    home = args.home.resolve()
    stream_key = f"bench:events:{time.time_ns()}"
    env = {
        "RECSERVE_HOME": str(home),
        "RECSERVE_REDIS_URL": args.redis_url,
        "RECSERVE_EVENTS__STREAM_KEY": stream_key,
    }
    # Enough unique requests that no phase wraps around into duplicates.
    closed_max_rps = 400
    n_requests = int(
        args.duration * closed_max_rps + args.duration * args.rate_events / args.batch + 200
    )
    requests = event_requests(home, n_requests, args.batch)
    port = free_port()
    phases: dict[str, dict[str, Any]] = {}
    try:
        with running(recserve_argv(port, 1), port, env) as proc:
            run_load(LoadSpec(port, requests[:100], 2, args.warmup))
            server_cpu = process_tree_cpu(proc)
            closed = measure_phase(
                server_cpu, LoadSpec(port, requests[100:], args.connections, args.duration), 1
            )
            used = 100 + closed["statuses"].get(200, 0) + closed["errors"]
            rate = args.rate_events / args.batch
            opened = measure_phase(
                server_cpu,
                LoadSpec(port, requests[used:], args.connections, args.duration, rate),
                1,
            )
            opened["target_rps"] = round(rate, 1)
            phases["closed loop (max)"] = closed
            phases[f"open loop {args.rate_events:.0f} events/s"] = opened
    finally:
        _drop_keys(args.redis_url, stream_key)
    for summary in phases.values():
        summary["events_per_s"] = round(summary["rps"] * args.batch)
    return phases


def _drop_keys(url: str, stream_key: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{stream_key}*", count=10_000):
            client.delete(key)
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="a home built with Redis")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--rate-events", type=float, default=5000.0, help="open-loop events/s")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    phases = run(args)
    print(f"batch={args.batch} workers=1 redis={args.redis_url} cores={os.cpu_count()}")
    head = ("phase", "req/s", "events/s", "p50", "p95", "p99", "max", "err", "srv cpu")
    print(f"{head[0]:30}" + "".join(f"{h:>10}" for h in head[1:]))
    for name, s in phases.items():
        cols = ("rps", "events_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms", "errors")
        print(f"{name:30}" + "".join(f"{s[c]!s:>10}" for c in cols) + f"{s['server_cpu_core']:>10}")
    if args.json:
        args.json.write_text(json.dumps(phases, indent=2))


if __name__ == "__main__":
    main()
