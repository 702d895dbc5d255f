"""Peak-hour gain of ``recserve precompute``: one day's traffic curve, compressed in time,
replayed twice on the same home and server settings, without and with the precompute job.

    python -m loadtests.peaks --home HOME --redis-url redis://127.0.0.1:6379/9 [--workers 2]
        [--users 300] [--quiet-rate 30] [--peak-rate 200] [--hour-s 5] [--rounds 1] [--json FILE]

Time runs ``3600 / --hour-s`` times faster than a real day, and so do the cache lifetimes
(the shared tier's ``cache.redis_ttl_seconds``, the in-process tier's, and the precompute's
``max_age_seconds``), so an answer lives as long relative to the curve as it would for real.
Each arm starts a fresh server (``--workers``, SQLite online store, the cache's shared tier on
``--redis-url``, its keys deleted first) and replays:

1. **quiet hours** (02:00-05:00, three compressed hours) at ``--quiet-rate`` requests/s; in
   the *with* arm ``recserve precompute --force --users N`` runs meanwhile, as the scheduler
   would start it in its quiet hours (the arm waits for it if it outlasts the quiet hours);
2. the afternoon gap (one compressed hour, no traffic: the quiet hours' own cached answers
   expire, as they would by the evening);
3. **the peak** (18:00-21:00) at ``--peak-rate`` requests/s, open loop, latency counted from
   each request's due time.

Both arms send the same streams: Zipf(1.0) over users ranked by activity with 5% unknown
users, as ``loadtests.bench`` does. The peak's hit ratio (answers from either cache tier), its
p50/p99, and the p99 of its first compressed hour (the onset, when a cold cache hurts most) are
compared; the trivial-endpoint ceiling runs the same peak stream at the same rate alongside.
``--rounds N`` repeats the whole replay (both arms and the ceiling) and ends with each figure's
median: on a shared machine one replay's tail moves a lot. Servers listen on ``--port`` ..
``--port + 2``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from loadtests.bench import zipf_user_stream
from loadtests.client import LoadResult, LoadSpec, recommend_requests, run_load
from loadtests.latency import percentiles
from loadtests.server import ceiling_argv, recserve_argv, running

QUIET_HOURS = 3
GAP_HOURS = 1
PEAK_HOURS = 3
# The service's defaults, compressed with the day.
REDIS_TTL_SECONDS = 300
LOCAL_TTL_SECONDS = 30.0
MAX_AGE_SECONDS = 86_400
CONNECTIONS = 32
HIT_TIERS = ("local", "redis")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--redis-url", required=True, help="the cache's Redis (keys deleted)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=int, default=300, help="users to precompute")
    parser.add_argument("--quiet-rate", type=float, default=30.0)
    parser.add_argument("--peak-rate", type=float, default=200.0)
    parser.add_argument("--hour-s", type=float, default=5.0, help="seconds per replayed hour")
    parser.add_argument("--port", type=int, default=18600)
    parser.add_argument("--rounds", type=int, default=1, help="replays; medians at the end")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rounds = []
    for _ in range(args.rounds):
        rounds.append(replay(args))
        print_report(rounds[-1]["phases"])
    if args.rounds > 1:
        print(f"median of {args.rounds} rounds")
        print_report(median_phases([r["phases"] for r in rounds]))
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=2) + "\n")


def replay(args: argparse.Namespace) -> dict[str, Any]:
    scale = 3600 / args.hour_s
    quiet_s, peak_s = QUIET_HOURS * args.hour_s, PEAK_HOURS * args.hour_s
    quiet_users, _ = zipf_user_stream(args.home, int(quiet_s * args.quiet_rate) + 1, 1.0, 0.05, 1)
    peak_users, _ = zipf_user_stream(args.home, int(peak_s * args.peak_rate) + 1, 1.0, 0.05, 2)
    env = {
        "RECSERVE_HOME": str(args.home.resolve()),
        "RECSERVE_REDIS_URLS__CACHE": args.redis_url,
        "RECSERVE_CACHE__REDIS_TTL_SECONDS": str(max(1, round(REDIS_TTL_SECONDS / scale))),
        "RECSERVE_CACHE__LOCAL_TTL_SECONDS": str(LOCAL_TTL_SECONDS / scale),
        "RECSERVE_PRECOMPUTE__MAX_AGE_SECONDS": str(max(60, round(MAX_AGE_SECONDS / scale))),
    }
    phases: dict[str, Any] = {}
    for offset, arm in enumerate(("without", "with")):
        asyncio.run(_delete_cache_keys(args.redis_url))
        port = args.port + offset
        with running(recserve_argv(port, args.workers), port, env=env, timeout=300):
            job: subprocess.Popen[bytes] | None = None
            started = time.perf_counter()
            if arm == "with":
                argv = [sys.executable, "-m", "app.cli", "precompute", "--force"]
                job = subprocess.Popen(
                    [*argv, "--users", str(args.users)],
                    env={**os.environ, **env},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
            quiet = _load(port, quiet_users, quiet_s, args.quiet_rate)
            job_s = None
            if job is not None:
                output = job.communicate(timeout=600)[0].decode()
                if job.returncode != 0:
                    raise SystemExit(f"precompute failed ({job.returncode}):\n{output}")
                job_s = round(time.perf_counter() - started, 1)
                print(output.strip().splitlines()[-1])
            time.sleep(max(0.0, started + quiet_s + GAP_HOURS * args.hour_s - time.perf_counter()))
            peak = _load(port, peak_users, peak_s, args.peak_rate)
        phases[f"peak, {arm} precompute"] = {
            "quiet": _summary(quiet),
            "peak": _summary(peak),
            "onset": _summary(peak, until_s=args.hour_s),
            "job_s": job_s,
        }
    ceiling_port = args.port + 2
    with running(ceiling_argv(ceiling_port, args.workers), ceiling_port):
        ceiling = _load(ceiling_port, peak_users, peak_s, args.peak_rate)
    phases["peak, ceiling"] = {
        "peak": _summary(ceiling),
        "onset": _summary(ceiling, until_s=args.hour_s),
    }
    return {
        "home": str(args.home),
        "workers": args.workers,
        "users_precomputed": args.users,
        "quiet_rate": args.quiet_rate,
        "peak_rate": args.peak_rate,
        "hour_s": args.hour_s,
        "phases": phases,
        "load_average": os.getloadavg()[0],
    }


def _load(port: int, users: list[str], seconds: float, rate: float) -> LoadResult:
    spec = LoadSpec(port, recommend_requests(users), CONNECTIONS, seconds, rate_per_s=rate)
    return run_load(spec)


def _summary(result: LoadResult, until_s: float | None = None) -> dict[str, Any]:
    """Percentiles and the cache hit ratio, of the answers completed before ``until_s``."""
    latencies = [
        latency
        for latency, done in zip(result.latencies_ms, result.completed_s, strict=True)
        if until_s is None or done <= until_s
    ]
    # "-": answers without a ``cache`` field (the ceiling's).
    answered = sum(n for tier, n in result.cache_tiers.items() if tier != "-")
    hits = sum(result.cache_tiers.get(tier, 0) for tier in HIT_TIERS)
    summary = {**percentiles(latencies), "errors": result.errors}
    if until_s is None:
        summary["hit_ratio"] = round(hits / answered, 3) if answered else None
        summary["cache_tiers"] = dict(result.cache_tiers)
    return summary


async def _delete_cache_keys(url: str) -> None:
    async with Redis.from_url(url) as client:
        keys = [key async for key in client.scan_iter(match="recserve:rec:*")]
        if keys:
            await client.delete(*keys)


def median_phases(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each phase's figures as the median over ``rounds``."""
    merged: dict[str, Any] = {}
    for name, first in rounds[0].items():
        merged[name] = {
            part: {
                key: statistics.median(r[name][part][key] for r in rounds)
                for key in ("hit_ratio", "p50_ms", "p99_ms", "n")
                if first[part].get(key) is not None
            }
            for part in ("peak", "onset")
        }
    return merged


def print_report(phases: dict[str, Any]) -> None:
    print(f"{'phase':<28} {'hit ratio':>9} {'p50 ms':>7} {'p99 ms':>7} {'onset p99':>9} {'n':>6}")
    for name, phase in phases.items():
        peak, onset = phase["peak"], phase["onset"]
        hit = peak.get("hit_ratio")
        print(
            f"{name:<28} {'-' if hit is None else f'{hit:.3f}':>9} {peak['p50_ms']:>7.2f} "
            f"{peak['p99_ms']:>7.2f} {onset['p99_ms']:>9.2f} {peak['n']:>6.0f}"
        )


if __name__ == "__main__":
    main()
