"""Single-client latency of ``/recommend`` on one uvicorn worker: cache misses and cache hits,
beside the trivial-endpoint ceiling measured in the same run.

    python -m loadtests.latency --home .recserve [--requests 3000] [--redis-url URL]

The client is one keep-alive ``http.client`` connection issuing requests back to back, so each
figure is the server's answer time plus one loopback round trip.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time
from pathlib import Path
from urllib.parse import quote

import orjson
import pandas as pd

from loadtests.server import ceiling_argv, free_port, recserve_argv, running


def percentiles(samples_ms: list[float]) -> dict[str, object]:
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "n": len(ordered),
        "p50_ms": round(pick(0.50), 3),
        "p95_ms": round(pick(0.95), 3),
        "p99_ms": round(pick(0.99), 3),
        "max_ms": round(ordered[-1], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


def measure(port: int, user_ids: list[str], n: int) -> tuple[list[float], dict[str, int]]:
    """Latencies (ms) of ``n`` sequential GETs cycling through ``user_ids``; sources seen."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    latencies: list[float] = []
    sources: dict[str, int] = {}
    for i in range(n):
        user = quote(user_ids[i % len(user_ids)], safe="")
        started = time.perf_counter()
        conn.request("GET", f"/recommend?user_id={user}&k=10")
        response = conn.getresponse()
        body = response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body[:300]!r}")
        data = orjson.loads(body)
        label = f"{data.get('source')}/{data.get('cache') or 'computed'}"
        sources[label] = sources.get(label, 0) + 1
    conn.close()
    return latencies, sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="a built RECSERVE_HOME")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--redis-url", default=None, help="use Redis (online store + cache)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()

    users = pd.read_parquet(args.home / "data" / "interactions.parquet", columns=["user_id"])
    user_ids = users["user_id"].drop_duplicates().tolist()
    env = {"RECSERVE_HOME": str(args.home.resolve())}
    if args.redis_url:
        env["RECSERVE_REDIS_URL"] = args.redis_url
    results: dict[str, dict[str, object]] = {}

    port = free_port()
    with running(ceiling_argv(port), port):
        measure(port, user_ids, 500)
        lat, _ = measure(port, user_ids, args.requests)
        results["ceiling (trivial endpoint)"] = percentiles(lat)

    port = free_port()
    with running(recserve_argv(port), port, {**env, "RECSERVE_CACHE__ENABLED": "false"}):
        measure(port, user_ids, 500)
        lat, sources = measure(port, user_ids, args.requests)
        results["recommend, cache miss"] = {**percentiles(lat), "sources": sources}

    port = free_port()
    with running(recserve_argv(port), port, env):
        hot = user_ids[: min(len(user_ids), 1000)]
        measure(port, hot, len(hot))  # fills the cache
        lat, sources = measure(port, hot, args.requests)
        results["recommend, cache hit"] = {**percentiles(lat), "sources": sources}

    print(f"{'phase':32} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  (ms, 1 worker, 1 client)")
    for name, r in results.items():
        print(f"{name:32} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8} {r['max_ms']:>8}")
    for name, r in results.items():
        if "sources" in r:
            print(f"{name}: {r['sources']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
