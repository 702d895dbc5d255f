"""Does ``/recommend`` over HTTP answer every test user with the list ``recserve evaluate``
scored? (offline/served parity)

```bash
python -m loadtests.served_parity --data ../shared/data/ml-100k [--protocol warm|cold]
```

Runs one protocol exactly as ``recserve evaluate`` runs it (split, build of the train part,
every test user answered by the serving engine, metrics), then starts ``recserve serve``
(uvicorn, one worker, embedded defaults) on the home that build wrote and asks
``GET /recommend?k=10`` for every test user. Prints how many answers are the same items in
the same order, the first few that are not, and NDCG@10 computed from the HTTP answers beside
the evaluation's own figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from app.cli import non_negative_int, served_top_k
from app.data.types import USER_ID, DataFormatError
from app.settings import Settings
from app.training.evaluate import SERVED, K, ProtocolRun, ServedList
from app.training.evaluate_baselines import attribute_tokens_by_id
from app.training.evaluate_data import ingested_copy
from app.training.metrics import user_metrics
from app.training.split import protocol_split
from loadtests.server import free_port, recserve_argv, running

SHOWN_MISMATCHES = 5
# What the evaluation's build overrides (a private home, SQLite, HOME/models): the server must
# not take them from this process's environment. Every other setting both share.
EVALUATION_OWNS = ("RECSERVE_REDIS_URL", "RECSERVE_MODELS_DIR")
HTTP_TIMEOUT_SECONDS = 10.0


def run(
    source: Path,
    protocol: str = "warm",
    *,
    cold_seed: int = 0,
    tuning_budget_seconds: float = 120.0,
) -> dict[str, Any]:
    """The whole check on the RecBole atomic dataset ``source``; the report as a dict."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with ingested_copy(source, "the parity check") as copy:
        work, dataset = copy.work, copy.dataset
        split = protocol_split(protocol, dataset.interactions, cold_seed)
        tokens = attribute_tokens_by_id(dataset.users, dataset.user_fields, USER_ID)
        seed = cold_seed if protocol == "cold" else None
        evaluation = ProtocolRun(protocol, dataset, split, tokens, seed)
        scored: list[ServedList] = []

        def recording(settings: Settings, users: Sequence[str], k: int) -> list[ServedList]:
            answers = served_top_k(settings, users, k)
            scored.extend(answers)
            return answers

        result = evaluation.execute(Settings(), source, work, recording, tuning_budget_seconds)
        seconds["evaluate"] = time.perf_counter() - started
        started = time.perf_counter()
        answered = _ask_over_http(work / "home", evaluation.users)
        seconds["http"] = time.perf_counter() - started
    expected = [answer.items for answer in scored]
    mismatches = [
        {"user_id": user, "evaluation": want, "http": got}
        for user, want, got in zip(evaluation.users, expected, answered, strict=True)
        if want != got
    ]
    (served,) = [m for m in result.methods if m.name == SERVED]
    return {
        "dataset": source.name,
        "protocol": protocol,
        "users": len(evaluation.users),
        "identical": len(evaluation.users) - len(mismatches),
        "mismatches": mismatches[:SHOWN_MISMATCHES],
        "ndcg_evaluation": served.ndcg,
        "ndcg_http": float(user_metrics(answered, evaluation.relevant, K).ndcg.mean()),
        "seconds": {step: round(value, 1) for step, value in seconds.items()},
    }


def _ask_over_http(home: Path, users: Sequence[str]) -> list[list[str]]:
    port = free_port()
    answers = []
    with (
        running(recserve_argv(port), port, {"RECSERVE_HOME": str(home)}, unset=EVALUATION_OWNS),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT_SECONDS) as client,
    ):
        for user in users:
            response = client.get("/recommend", params={"user_id": user, "k": K})
            if response.status_code != 200:
                raise RuntimeError(f"/recommend for {user}: HTTP {response.status_code}")
            answers.append([item["item_id"] for item in response.json()["items"]])
    return answers


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"{report['dataset']}, {report['protocol']} protocol: {report['identical']} of "
        f"{report['users']} test users got the same {K} items in the same order over HTTP",
        f"NDCG@{K}: evaluation {report['ndcg_evaluation']:.4f}, "
        f"from the HTTP answers {report['ndcg_http']:.4f}",
    ]
    for mismatch in report["mismatches"]:
        lines.append(
            f"  {mismatch['user_id']}: evaluation {mismatch['evaluation']} http {mismatch['http']}"
        )
    timings = ", ".join(f"{step} {value}" for step, value in report["seconds"].items())
    return "\n".join([*lines, f"seconds: {timings}"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="RecBole atomic dataset dir")
    parser.add_argument("--protocol", choices=("warm", "cold"), default="warm")
    parser.add_argument(
        "--cold-seed", type=non_negative_int, default=0, help="the cold draw to check (default 0)"
    )
    parser.add_argument("--tuning-budget", type=float, default=120.0, help="build's seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    try:
        report = run(
            args.data,
            args.protocol,
            cold_seed=args.cold_seed,
            tuning_budget_seconds=args.tuning_budget,
        )
    except DataFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0 if report["identical"] == report["users"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
