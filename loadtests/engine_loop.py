"""CPU per answer of the serving engine in-process: the full pipeline without HTTP.

    python -m loadtests.engine_loop --home HOME [--answers 6000] [--passes 5]
                                    [--concurrency 1] [--redis-url URL]
                                    [--multiprocess-metrics]

The engine ``/recommend`` uses, built as a worker builds it (``build_engine``), answers the
bench's user stream (``bench.zipf_user_stream``: Zipf over users ranked by activity, ~5%
unknown) with the cache off: consent, online feature read, ONNX scoring, rules, top-k. Each
pass times every answer with ``process_time``; the best and the median pass are printed in µs
per answer. Between two server runs on a shared machine throughput drifts by ±10%; this
number drifts by 2-3%, so it is the one to compare variants of the engine with (alternate
them, a few runs each). ``--multiprocess-metrics`` stores metrics as a multi-worker server
does (``PROMETHEUS_MULTIPROC_DIR``, here a temporary directory), which costs more per call.
``--concurrency N`` answers N requests at a time (``asyncio.gather``), as a loaded worker's
event loop has several ready at once: they share their consent and feature reads. The loop is
uvloop's, as in the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import uvloop

from loadtests.bench import zipf_user_stream


@dataclass(frozen=True)
class EngineLoopResult:
    best_us: float
    median_us: float
    answers_per_pass: int
    sources: dict[str, int]  # how the answers of one pass were made (personalized, popular...)


async def measure(
    user_ids: Sequence[str], passes: int, warmup: int, concurrency: int = 1
) -> EngineLoopResult:
    """Build the engine from the environment's settings and time ``passes`` passes over
    ``user_ids`` (after ``warmup`` answers), ``concurrency`` requests at a time."""
    # Imported here: the Prometheus storage mode is fixed when prometheus_client is imported.
    from app.bootstrap import build_engine, close_engine
    from app.serving.types import RecommendRequest
    from app.settings import Settings

    engine = await build_engine(Settings())
    try:
        requests = [RecommendRequest(user_id, 10, use_cache=False) for user_id in user_ids]
        groups = [requests[at : at + concurrency] for at in range(0, len(requests), concurrency)]
        for request in requests[:warmup]:
            await engine.recommend(request)
        per_answer = []
        sources: Counter[str] = Counter()
        for _ in range(passes):
            sources.clear()
            started = time.process_time()
            for group in groups:
                answers = (
                    [await engine.recommend(group[0])]  # no task: a lone request
                    if concurrency == 1
                    else await asyncio.gather(*map(engine.recommend, group))
                )
                sources.update(answer.source.value for answer in answers)
            per_answer.append((time.process_time() - started) / len(requests) * 1e6)
    finally:
        await close_engine(engine)
    return EngineLoopResult(
        best_us=round(min(per_answer), 1),
        median_us=round(statistics.median(per_answer), 1),
        answers_per_pass=len(requests),
        sources=dict(sources),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a built RECSERVE_HOME")
    parser.add_argument("--answers", type=int, default=6000, help="answers per pass")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1000, help="answers before timing")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="requests answered together (gather)"
    )
    parser.add_argument("--redis-url", default=None, help="use Redis (online store, consent)")
    parser.add_argument(
        "--multiprocess-metrics",
        action="store_true",
        help="Prometheus values in files, as with 2+ workers",
    )
    parser.add_argument("--zipf", type=float, default=1.0, help="user popularity exponent")
    args = parser.parse_args(argv)
    if args.answers < 1 or args.passes < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error(
            "--answers, --passes and --concurrency must be at least 1, --warmup at least 0"
        )
    home = args.home.resolve()
    if not (home / "data" / "interactions.parquet").is_file():
        print(f"error: {home} is not a built home (no data/interactions.parquet)", file=sys.stderr)
        return 2
    os.environ["RECSERVE_HOME"] = str(home)
    os.environ["RECSERVE_CACHE__ENABLED"] = "false"
    if args.redis_url:
        os.environ["RECSERVE_REDIS_URL"] = args.redis_url
    stream, _ = zipf_user_stream(home, args.answers, args.zipf, unknown_share=0.05)
    if args.multiprocess_metrics:
        with tempfile.TemporaryDirectory(prefix="engine-loop-metrics-") as metrics_dir:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
            try:
                result = uvloop.run(measure(stream, args.passes, args.warmup, args.concurrency))
            finally:  # the directory is gone: nothing may look for metrics there afterwards
                del os.environ["PROMETHEUS_MULTIPROC_DIR"]
    else:
        result = uvloop.run(measure(stream, args.passes, args.warmup, args.concurrency))
    print(
        f"engine loop, {result.answers_per_pass} answers x {args.passes} passes, "
        f"{args.concurrency} at a time: "
        f"best {result.best_us} us/answer, median {result.median_us} us/answer "
        f"(CPU time); answers by source {result.sources}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
