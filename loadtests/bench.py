"""Throughput and latency under load: recserve beside the trivial-endpoint ceiling.

    python -m loadtests.bench --home HOME [--workers 2] [--redis-url URL] [--duration 15]
                              [--connections 32] [--cache on|off|both] [--json FILE]
    python -m loadtests.bench --home HOME --url http://HOST:PORT [--api-key KEY] ...
    python -m loadtests.bench --home HOME --rounds 3 ...
    python -m loadtests.bench --home HOME --redis-home REDIS_HOME --redis-url URL ...

For each server (recserve with the cache off, recserve with the cache on, the ceiling, all with
the same number of workers) it warms up, then runs a closed-loop phase (``--connections``
keep-alive clients back to back: the maximum throughput) and an open-loop phase at a fixed rate:
half the full-pipeline (cache off) maximum (with ``--cache on`` alone: half the cache-hit
maximum), unless ``--rate`` is given. Cache off cycles a Zipf-distributed stream over all
users of ``HOME/data/interactions.parquet`` plus ~5% unknown users; cache on requests a hot set
of users that the warm-up requested before.

``--redis-home`` measures both online stores in one run: ``HOME`` on SQLite with the cache off,
then ``REDIS_HOME`` (built with ``--redis-url`` from the same data) on Redis with the cache off
and on, each full pipeline's open loop at half its own maximum, then the ceiling. After each
round the bench checks the service's throughput targets (full pipeline >= 0.3x the ceiling,
cache hit >= 0.6x, each full pipeline's open-loop p99 <= 10 ms, no errors; set for ml-100k and
2 workers) and prints which are met.

With ``--url`` it starts no recserve: it loads the server already running there (a container,
a server started with other settings, another host) with the cache-off stream drawn from
``HOME``'s users, with ``--api-key`` as ``X-API-Key`` when access is enforced, then measures the
local ceiling as usual. Its server CPU is reported when the URL's port is served by local
processes this user can see; the ratio to the ceiling means most when the target runs on this
machine with the same number of workers.

``--rounds N`` repeats the whole run, ceiling included, N times and then prints each phase's
median, lowest and highest ratio to its round's ceiling: on a shared machine one run's ratio
can move by a tenth from one run to the next, and a round-by-round spread shows how much.

The load generator (``loadtests.client``) runs in its own process; its CPU use and the server's
are printed in cores, because client and server share the machine's cores. Each worker's
memory after a phase is printed as RSS/PSS/USS (PSS shares the mapped model files out between
the workers that map them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import psutil

from loadtests.client import LoadSpec, recommend_requests, run_load, summarize
from loadtests.server import ceiling_argv, free_port, process_memory, recserve_argv, running
from loadtests.store_load import Counters, per_thousand

Phases = dict[str, dict[str, Any]]
# CPU seconds in a phase above which a server process counts as a worker that served it.
BUSY_CPU_S = 0.05


def zipf_user_stream(
    home: Path, n: int, exponent: float, unknown_share: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """``n`` user ids drawn Zipf(``exponent``) over users ranked by interaction count, with
    ``unknown_share`` of them replaced by ids the model has never seen; also the ranked users."""
    users = pd.read_parquet(home / "data" / "interactions.parquet", columns=["user_id"])
    ranked = users["user_id"].value_counts().index.astype(str).tolist()
    weights = 1.0 / np.arange(1, len(ranked) + 1) ** exponent
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(ranked), size=n, p=weights / weights.sum())
    stream = [ranked[i] for i in picks]
    for slot in np.flatnonzero(rng.random(n) < unknown_share):
        stream[slot] = f"bench-unknown-{rng.integers(1_000_000):06d}"
    return stream, ranked


# CPU seconds used so far by each process of the server under test, by pid.
ServerCpu = Callable[[], dict[int, float]]


def process_tree_cpu(proc: subprocess.Popen[bytes]) -> ServerCpu:
    """A server started here: its process and every child (the workers)."""
    return lambda: _cpu_seconds([psutil.Process(proc.pid)])


def listener_cpu(port: int) -> ServerCpu | None:
    """The local processes holding a socket listening on ``port`` (uvicorn's workers share
    their supervisor's), or None when none is visible (another host, another user's)."""
    holders = []
    for process in psutil.process_iter():
        try:
            sockets = process.net_connections(kind="tcp")
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in sockets):
            holders.append(process)
    if not holders:
        return None
    return lambda: _cpu_seconds(holders)


def _cpu_seconds(roots: Sequence[psutil.Process]) -> dict[int, float]:
    """CPU seconds of ``roots`` and all their children, each process counted once."""
    family: dict[int, psutil.Process] = {}
    for root in roots:
        try:
            family.update((p.pid, p) for p in [root, *root.children(recursive=True)])
        except psutil.NoSuchProcess:
            continue
    used: dict[int, float] = {}
    for pid, process in family.items():
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        used[pid] = times.user + times.system
    return used


def measure_phase(server_cpu: ServerCpu | None, spec: LoadSpec, processes: int) -> dict[str, Any]:
    """One load run; with ``server_cpu``, also the server's CPU during it (else None)."""
    before = server_cpu() if server_cpu else {}
    result = run_load(spec, processes)
    after = server_cpu() if server_cpu else {}
    summary = summarize(result)
    summary["server_cpu_core"] = summary["server_cpu_us_per_request"] = None
    # Per process too: a worker left idle shows an uneven spread of connections.
    per_process = [round((t - before.get(pid, 0.0)) / result.wall_s, 2) for pid, t in after.items()]
    summary["server_cpu_core_per_process"] = per_process
    # The processes that served the phase (the workers, not the idle supervisor).
    busy = [pid for pid, t in after.items() if t - before.get(pid, 0.0) >= BUSY_CPU_S]
    summary["server_memory_per_worker"] = process_memory(busy)
    if server_cpu:
        summary["server_cpu_core"] = round(sum(per_process), 2)
        # Server CPU per answer: unlike throughput, barely moved by other work on the cores.
        summary["server_cpu_us_per_request"] = round(1e6 * sum(per_process) / summary["rps"])
    return summary


@dataclass(frozen=True)
class Target:
    """A running server to load: where it listens and the path prefix it is mounted under."""

    host: str
    port: int
    prefix: str

    @property
    def authority(self) -> str:
        """The ``Host`` header: the port unless it is HTTP's default, IPv6 in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 80 else f"{host}:{self.port}"


def parse_target(url: str) -> Target:
    """``http://host[:port][/prefix]``; raises ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"--url {url!r}: only http:// (the load generator speaks plain HTTP)")
    if not parts.hostname:
        raise ValueError(f"--url {url!r}: no host")
    if parts.query or parts.fragment:
        raise ValueError(f"--url {url!r}: no query or fragment, /recommend's query is the bench's")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise ValueError(f"--url {url!r}: {exc}") from None
    return Target(parts.hostname, port, parts.path.rstrip("/"))


def closed_then_open(
    spec: LoadSpec,
    server_cpu: ServerCpu | None,
    args: argparse.Namespace,
    rate: float | None,
    store_counters: Counters | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Warm up, then the closed-loop phase and the open-loop one at ``rate`` requests/s
    (half of this server's own maximum when ``rate`` is None). With ``store_counters``, the
    closed loop's summary has their growth per 1,000 requests (``store_per_1k_requests``)."""
    run_load(replace(spec, duration_s=args.warmup), args.processes)
    before = store_counters() if store_counters else {}
    closed = measure_phase(server_cpu, replace(spec, duration_s=args.duration), args.processes)
    if store_counters:
        grown = per_thousand(before, store_counters(), closed["requests"])
        closed["store_per_1k_requests"] = grown
    open_rate = rate or closed["rps"] / 2
    spec = replace(spec, duration_s=args.duration, rate_per_s=open_rate)
    opened = measure_phase(server_cpu, spec, args.processes)
    opened["target_rps"] = round(open_rate, 1)
    return closed, opened


def bench_server(
    argv: Sequence[str],
    port: int,
    env: dict[str, str],
    requests: Sequence[bytes],
    args: argparse.Namespace,
    rate: float | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``closed_then_open`` against a server started here with ``argv``."""
    with running(argv, port, env) as proc:
        spec = LoadSpec(port, requests, args.connections, args.duration)
        return closed_then_open(spec, process_tree_cpu(proc), args, rate)


def stores(args: argparse.Namespace) -> list[tuple[str, dict[str, str]]]:
    """(label, server environment) of each online store to measure: ``--home`` on its own
    store (Redis when ``--redis-url`` is given alone), then ``--redis-home`` on Redis."""
    home = {"RECSERVE_HOME": str(args.home.resolve())}
    if args.redis_home is None:
        if args.redis_url:
            return [("Redis", {**home, "RECSERVE_REDIS_URL": args.redis_url})]
        return [("SQLite", home)]
    redis_home = {"RECSERVE_HOME": str(args.redis_home.resolve())}
    return [("SQLite", home), ("Redis", {**redis_home, "RECSERVE_REDIS_URL": args.redis_url})]


def run(args: argparse.Namespace) -> Phases:
    """All phases in the order the open-loop rate needs: per store cache off then cache on,
    then the ceiling. Each full pipeline's open loop runs at half its own maximum; the cache
    and ceiling phases at the first one's rate (or all at ``--rate``)."""
    home = args.home.resolve()
    stream, ranked = zipf_user_stream(home, 20_000, args.zipf, args.unknown_share)
    full_requests = recommend_requests(stream)
    hot_requests = recommend_requests(ranked[: args.hot_users])
    phases: Phases = {}
    rate: float | None = args.rate
    modes = ["off", "on"] if args.cache == "both" else [args.cache]
    measured = stores(args)
    if args.url:
        target = parse_target(args.url)
        headers = [("X-API-Key", args.api_key)] if args.api_key else []
        requests = recommend_requests(
            stream, host=target.authority, prefix=target.prefix, headers=headers
        )
        spec = LoadSpec(target.port, requests, args.connections, args.duration, host=target.host)
        local = target.host in ("127.0.0.1", "localhost", "::1")
        closed, opened = closed_then_open(
            spec, listener_cpu(target.port) if local else None, args, rate
        )
        rate = rate or opened["target_rps"]
        phases[f"{args.url}, closed"] = closed
        phases[f"{args.url}, open"] = opened
        measured = []  # the target's store and cache are as they are configured there
    for store, env in measured:
        for mode in modes:
            if mode == "on" and store == "SQLite" and args.redis_home is not None:
                continue  # several workers share no cache without Redis: Redis's phase has it
            port = free_port()
            mode_env = {**env, "RECSERVE_CACHE__ENABLED": "true" if mode == "on" else "false"}
            requests = full_requests if mode == "off" else hot_requests
            label = f"full pipeline (cache off, {store})"
            if mode == "on":
                label = f"cache hit (hot set, {store})"
            argv = recserve_argv(port, args.workers)
            own_rate = args.rate if mode == "off" else rate
            closed, opened = bench_server(argv, port, mode_env, requests, args, own_rate)
            rate = rate or opened["target_rps"]
            if mode == "on" and not cache_hits(closed):
                # Without Redis, several workers run with no cache at all (read-your-writes).
                label = "cache on, but no hits (no cache: 2+ workers need --redis-url)"
            phases[f"{label}, closed"] = closed
            phases[f"{label}, open"] = opened
    port = free_port()
    ceiling, ceiling_open = bench_server(
        ceiling_argv(port, args.workers), port, {}, full_requests, args, rate
    )
    phases["ceiling, closed"] = ceiling
    phases["ceiling, open"] = ceiling_open
    for summary in phases.values():
        summary["x_ceiling"] = round(summary["rps"] / ceiling["rps"], 3)
    return phases


# Throughput targets: (phase name prefix, closed-loop ratio to the ceiling at least).
RATIO_TARGETS = (("full pipeline", 0.3), ("cache hit", 0.6))
OPEN_P99_TARGET_MS = 10.0  # for each full pipeline's open loop, with zero errors


def check_targets(phases: Phases) -> list[dict[str, Any]]:
    """Each throughput target that applies to a phase of this round, met or not."""
    checks = []
    for name, phase in phases.items():
        for prefix, floor in RATIO_TARGETS:
            if name.startswith(prefix) and name.endswith(", closed"):
                met = phase["x_ceiling"] >= floor and phase["errors"] == 0
                wanted = f">= {floor}x ceiling, 0 errors"
                checks.append(_check(name, wanted, f"{phase['x_ceiling']}x", met))
        if name.startswith("full pipeline") and name.endswith(", open"):
            met = phase["p99_ms"] <= OPEN_P99_TARGET_MS and phase["errors"] == 0
            wanted = f"p99 <= {OPEN_P99_TARGET_MS:g} ms, 0 errors"
            got = f"p99 {phase['p99_ms']} ms, {phase['errors']} errors"
            checks.append(_check(name, wanted, got, met))
    return checks


def _check(phase: str, wanted: str, got: str, met: bool) -> dict[str, Any]:
    return {"phase": phase, "target": wanted, "measured": got, "met": met}


def print_targets(checks: Sequence[dict[str, Any]]) -> None:
    for check in checks:
        verdict = "met" if check["met"] else "NOT MET"
        print(f"target {check['phase']}: {check['target']}: {check['measured']}: {verdict}")
    if checks:
        print(
            "every target met in this round"
            if all(c["met"] for c in checks)
            else "some target not met in this round"
        )


def cache_hits(summary: dict[str, Any]) -> int:
    """Answers that came from a cache tier (an answer's ``cache`` field other than null)."""
    return sum(n for tier, n in summary["cache_tiers"].items() if tier not in ("null", "-"))


def across_rounds(rounds: Sequence[Phases]) -> Phases:
    """Per phase, over the rounds: the median, lowest and highest ratio to the round's ceiling,
    and the median throughput, p99 and server CPU per request. A phase some rounds lack (a
    cache phase relabelled when it got no hits) is summarised over the rounds that have it."""
    summary: Phases = {}
    names = dict.fromkeys(name for phases in rounds for name in phases)  # first-seen order
    for name in names:
        runs = [phases[name] for phases in rounds if name in phases]
        ratios = [run["x_ceiling"] for run in runs]
        cpu = [run["server_cpu_us_per_request"] for run in runs]
        summary[name] = {
            "rounds": len(runs),
            "x_ceiling_median": round(float(np.median(ratios)), 3),
            "x_ceiling_min": min(ratios),
            "x_ceiling_max": max(ratios),
            "rps_median": round(float(np.median([run["rps"] for run in runs])), 1),
            "p99_ms_median": round(float(np.median([run["p99_ms"] for run in runs])), 3),
            "p99_ms_max": max(run["p99_ms"] for run in runs),
            "errors": sum(run["errors"] for run in runs),
            "server_cpu_us_per_request_median": (
                round(float(np.median(cpu))) if all(c is not None for c in cpu) else None
            ),
        }
    return summary


NAME_WIDTH = 42  # the phase column: "full pipeline (cache off, SQLite), closed" fits

# (column heading, summary key) of the rounds summary, in print order
SUMMARY_COLUMNS = (
    ("x ceil med", "x_ceiling_median"),
    ("min", "x_ceiling_min"),
    ("max", "x_ceiling_max"),
    ("rps med", "rps_median"),
    ("p99 med", "p99_ms_median"),
    ("p99 max", "p99_ms_max"),
    ("err", "errors"),
    ("srv us med", "server_cpu_us_per_request_median"),
)


def print_summary(summary: Phases, rounds: int) -> None:
    print(f"over {rounds} rounds (each ratio against its own round's ceiling)")
    print(f"{'phase':{NAME_WIDTH}}" + "".join(f"{head:>11}" for head, _ in SUMMARY_COLUMNS))
    for name, s in summary.items():
        cells = (s[key] if s[key] is not None else "-" for _, key in SUMMARY_COLUMNS)
        print(f"{name:{NAME_WIDTH}}" + "".join(f"{cell!s:>11}" for cell in cells))


def print_table(phases: Phases, args: argparse.Namespace) -> None:
    print(
        f"workers={args.workers} connections={args.connections} duration={args.duration}s "
        f"client processes={args.processes} cores={os.cpu_count()} "
        f"redis={args.redis_url or 'no'}"
        + (f" redis-home={args.redis_home}" if args.redis_home else "")
        + (f" target={args.url}" if args.url else "")
    )
    head = ("phase", "rps", "x ceil", "p50", "p95", "p99", "max", "err", "cli cpu", "srv cpu")
    print(f"{head[0]:{NAME_WIDTH}}" + "".join(f"{h:>9}" for h in head[1:]) + f"{'srv us/req':>11}")
    for name, s in phases.items():
        cols = ("rps", "x_ceiling", "p50_ms", "p95_ms", "p99_ms", "max_ms", "errors")
        cells = [*(s[c] for c in cols), s["client_cpu_core"], s["server_cpu_core"] or "-"]
        per_request = s["server_cpu_us_per_request"] or "-"
        print(f"{name:{NAME_WIDTH}}" + "".join(f"{c!s:>9}" for c in cells) + f"{per_request:>11}")
    for name, s in phases.items():
        extra = ""
        if "target_rps" in s:
            extra = f" target {s['target_rps']}/s, send delay p99 {s['send_delay_p99_ms']} ms"
        spread = s["server_cpu_core_per_process"]
        print(f"{name}: statuses {s['statuses']} cache {s['cache_tiers']}{extra}")
        print(f"    server cpu per process (cores) {spread}")
        memory = [
            f"{m['rss_mb']:.0f}/{m['pss_mb']:.0f}/{m['uss_mb']:.0f}"
            for m in s["server_memory_per_worker"]
        ]
        print(f"    worker memory after the phase, RSS/PSS/USS MB: {' '.join(memory) or '-'}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="a built RECSERVE_HOME")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--redis-url",
        default=None,
        help="use Redis (online store + cache): for --home, or for --redis-home when given",
    )
    parser.add_argument(
        "--redis-home",
        type=Path,
        default=None,
        help="a home built with --redis-url from the same data: measured on Redis in the same "
        "run, after --home on SQLite",
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--cache", choices=("on", "off", "both"), default="both")
    parser.add_argument("--rate", type=float, default=None, help="open-loop requests/s")
    parser.add_argument("--processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--hot-users", type=int, default=200, help="cache-hit user set size")
    parser.add_argument("--zipf", type=float, default=1.0, help="user popularity exponent")
    parser.add_argument("--unknown-share", type=float, default=0.05)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument(
        "--url", default=None, help="load the server running at this http:// URL instead"
    )
    parser.add_argument("--api-key", default=None, help="sent as X-API-Key (with --url)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the whole run, ceiling included"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.url:
        try:
            parse_target(args.url)
        except ValueError as exc:
            parser.error(str(exc))
        if args.redis_url or args.redis_home:
            parser.error(
                "--redis-url and --redis-home configure servers the bench starts; not with --url"
            )
    elif args.api_key:
        parser.error("--api-key is sent to a --url target; the bench's own servers need none")
    if args.redis_home is not None and not args.redis_url:
        parser.error("--redis-home is served on Redis: give --redis-url too")
    for option, home in (("--home", args.home), ("--redis-home", args.redis_home)):
        if home is not None and not (home / "data" / "interactions.parquet").is_file():
            parser.error(f"{option} {home}: not a built home (no data/interactions.parquet)")

    load_before = os.getloadavg()
    rounds: list[Phases] = []
    verdicts: list[list[dict[str, Any]]] = []  # each round's target checks
    for number in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f"round {number} of {args.rounds}")
        rounds.append(run(args))
        print_table(rounds[-1], args)
        verdicts.append(check_targets(rounds[-1]))
        print_targets(verdicts[-1])
    summary = across_rounds(rounds) if args.rounds > 1 else None
    if summary is not None:
        print_summary(summary, args.rounds)
    met_in = [n for n, checks in enumerate(verdicts, 1) if checks and all(c["met"] for c in checks)]
    if args.rounds > 1 and any(verdicts):
        print(f"every target met in rounds {met_in or 'none'} of {args.rounds}")
    print(f"load average before {load_before}, after {os.getloadavg()}")
    if args.json:
        report: dict[str, Any] = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "load_average_before": list(load_before),
            "phases": rounds[0],
            "targets": verdicts[0],
        }
        if summary is not None:
            report["rounds"] = rounds
            report["summary"] = summary
            report["targets_per_round"] = verdicts
            report["every_target_met_in_rounds"] = met_in
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
