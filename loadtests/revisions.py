"""Several git revisions of recserve under the same load in one run, each against the ceiling.

    python -m loadtests.revisions --home HOME REV [REV ...] [--workers 2] [--duration 10]
                                  [--rounds 3] [--rate R] [--port P] [--json FILE]

Each revision's tree (``git archive REV``) is unpacked into a directory of its own and served
from there by ``recserve serve`` with the cache off (the full pipeline, the bench's Zipf stream
over ``HOME``'s users): ``PYTHONSAFEPATH`` keeps the current directory off ``sys.path`` and
``PYTHONPATH`` puts the revision's ``app`` before the installed one, in the server and its
workers. ``HOME`` must be one every revision can serve.

Each round serves every revision and then the ceiling (``loadtests.ceiling``), the revisions'
order rotating from one round to the next, so that on a machine whose speed drifts no revision
always runs first or last. Each server gets the bench's warm-up, a closed loop (its maximum)
and an open loop at one rate for every server of every round: ``--rate``, else half the first
revision's maximum in the first round. The summary gives, per revision over the rounds, the
mean and sample standard deviation of its closed-loop throughput divided by its round's
ceiling's, and of its open-loop p99 divided by the ceiling's open-loop p99 at the same rate.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests.bench import closed_then_open, process_tree_cpu, zipf_user_stream
from loadtests.client import LoadSpec, recommend_requests
from loadtests.server import ceiling_argv, free_port, recserve_argv, running

CEILING = "ceiling"


def unpack(revision: str, into: Path) -> Path:
    """``revision``'s tree of this repository, unpacked under ``into``."""
    tree = into / revision.replace("/", "_")
    archive = subprocess.run(["git", "archive", revision], check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def rotated(names: Sequence[str], round_index: int) -> list[str]:
    shift = round_index % len(names)
    return [*names[shift:], *names[:shift]]


def run_round(
    trees: dict[str, Path],
    order: Sequence[str],
    requests: Sequence[bytes],
    args: argparse.Namespace,
    rate: float | None,
) -> dict[str, dict[str, Any]]:
    """Closed and open loop of each revision in ``order``, then of the ceiling."""
    measured: dict[str, dict[str, Any]] = {}
    home_env = {"RECSERVE_HOME": str(args.home.resolve()), "RECSERVE_CACHE__ENABLED": "false"}
    for offset, name in enumerate([*order, CEILING]):
        # A port of its own: the previous server may still be letting go of its port.
        port = args.port + offset if args.port else free_port()
        if name == CEILING:
            argv, env = ceiling_argv(port, args.workers), {}
        else:
            code = {"PYTHONPATH": str(trees[name]), "PYTHONSAFEPATH": "1"}
            argv, env = recserve_argv(port, args.workers), {**home_env, **code}
        with running(argv, port, env, timeout=args.start_timeout) as proc:
            spec = LoadSpec(port, requests, args.connections, args.duration)
            closed, opened = closed_then_open(spec, process_tree_cpu(proc), args, rate)
        rate = rate or opened["target_rps"]
        measured[name] = {"closed": closed, "open": opened}
        print(
            f"  {name}: {closed['rps']} req/s, open p99 {opened['p99_ms']} ms at "
            f"{opened['target_rps']}/s, {closed['server_cpu_us_per_request']} srv µs/answer, "
            f"errors {closed['errors'] + opened['errors']}",
            flush=True,
        )
    return measured


def ratios(rounds: Sequence[dict[str, dict[str, Any]]], name: str) -> dict[str, Any]:
    """Mean and standard deviation over the rounds of ``name``'s ratios to the ceiling."""
    throughput = [r[name]["closed"]["rps"] / r[CEILING]["closed"]["rps"] for r in rounds]
    p99 = [r[name]["open"]["p99_ms"] / r[CEILING]["open"]["p99_ms"] for r in rounds]
    cpu = [r[name]["closed"]["server_cpu_us_per_request"] for r in rounds]
    return {
        "x_ceiling_mean": round(statistics.mean(throughput), 3),
        "x_ceiling_sd": round(statistics.stdev(throughput), 3),
        "p99_x_ceiling_mean": round(statistics.mean(p99), 2),
        "p99_x_ceiling_sd": round(statistics.stdev(p99), 2),
        "rps_mean": round(statistics.mean(r[name]["closed"]["rps"] for r in rounds)),
        # Server CPU per answer: the steadiest figure when other work shares the cores.
        "server_us_per_answer_mean": round(statistics.mean(cpu)),
        "server_us_per_answer_sd": round(statistics.stdev(cpu)),
        "open_p99_ms_mean": round(statistics.mean(r[name]["open"]["p99_ms"] for r in rounds), 2),
        "errors": sum(r[name][loop]["errors"] for r in rounds for loop in ("closed", "open")),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("revisions", nargs="+", help="git revisions of this repository")
    parser.add_argument("--home", type=Path, required=True, help="a built RECSERVE_HOME")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per loop")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=None, help="open-loop requests/s")
    parser.add_argument(
        "--port", type=int, default=None, help="first of the ports to serve on (default: any free)"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=180.0, help="seconds a server may take to start"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (a standard deviation needs two)")
    if len(set(args.revisions)) != len(args.revisions):
        parser.error("each revision once")
    stream, _ = zipf_user_stream(args.home.resolve(), 20_000, 1.0, 0.05)
    requests = recommend_requests(stream)
    rounds: list[dict[str, dict[str, Any]]] = []
    rate: float | None = args.rate
    with tempfile.TemporaryDirectory(prefix="recserve-revisions-") as scratch:
        trees = {rev: unpack(rev, Path(scratch)) for rev in args.revisions}
        for index in range(args.rounds):
            order = rotated(args.revisions, index)
            print(f"round {index + 1} of {args.rounds}: {', '.join(order)}, {CEILING}", flush=True)
            rounds.append(run_round(trees, order, requests, args, rate))
            rate = rate or rounds[0][order[0]]["open"]["target_rps"]
    summary = {rev: ratios(rounds, rev) for rev in args.revisions}
    print(f"over {args.rounds} rounds, mean ± sd of each ratio to its round's ceiling")
    head = ("x ceiling", "p99 x ceiling", "srv us/answer", "req/s", "p99 ms", "errors")
    print(f"{'revision':24}" + "".join(f"{h:>16}" for h in head))
    for rev, s in summary.items():
        cells = (
            f"{s['x_ceiling_mean']} ± {s['x_ceiling_sd']}",
            f"{s['p99_x_ceiling_mean']} ± {s['p99_x_ceiling_sd']}",
            f"{s['server_us_per_answer_mean']} ± {s['server_us_per_answer_sd']}",
            s["rps_mean"],
            s["open_p99_ms_mean"],
            s["errors"],
        )
        print(f"{rev:24}" + "".join(f"{c!s:>16}" for c in cells))
    if args.json:
        report = {"args": {k: str(v) for k, v in vars(args).items()}, "rate": rate}
        args.json.write_text(json.dumps({**report, "rounds": rounds, "summary": summary}))


if __name__ == "__main__":
    main()
