"""Cold-protocol baselines over many seeds of the cold draw (no model is built).

```bash
python -m loadtests.cold_draws --data ../shared/data/ml-100k --seeds 500 --json draws.json
```

For each seed in ``0 .. --seeds - 1`` the users are drawn by ``cold_split`` exactly as
``recserve evaluate --protocol cold`` draws them, and popularity, segment popularity and the
demographic ridge are scored by the evaluation's own code, so a seed's row equals that run's
baseline figures. The served model is never built: choosing draws by these figures stays blind
to it. Prints the distribution of each baseline and the seeds whose three baselines are all
within ``--tolerance`` of the baselines a peer library publishes for ml-100k
(``ML100K_REFERENCE``), closest first.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from app.cli import non_negative_int
from app.data.types import DataFormatError, Dataset
from app.training.evaluate import ML100K_REFERENCE, K, ProtocolRun, ingested_copy
from app.training.evaluate_protocol import cold_split, user_metrics

BASELINES = ("popularity", "segment popularity", "demographic ridge λ=100")


@dataclass(frozen=True)
class Draw:
    """One seed of the cold draw: its baselines' NDCG@K and the worst gap to the reference."""

    seed: int
    test_users: int
    ndcg: dict[str, float]
    max_abs_deviation: float


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("0 draws: expected 1 or more")
    return value


def reference() -> dict[str, float]:
    return {name: ML100K_REFERENCE[("cold", name)] for name in BASELINES}


def cold_baselines(dataset: Dataset, name: str, seed: int) -> tuple[int, dict[str, float]]:
    """Test users and NDCG@K of every cold baseline on the draw of ``seed``."""
    split = cold_split(dataset.interactions, seed=seed)
    # The evaluation's own per-protocol run, so the vocabularies, segments, tie-breaks and
    # exclusions are exactly those of `recserve evaluate`.
    run = ProtocolRun("cold", dataset, split, name)
    lists = run.baseline_lists()
    return len(run.users), {
        method: float(user_metrics(lists[method], run.relevant, K).ndcg.mean())
        for method in BASELINES
    }


def scan(source: Path, seeds: Sequence[int]) -> list[Draw]:
    target = reference()
    with ingested_copy(source, "the scan") as copy:
        dataset = copy.dataset
    draws = []
    for seed in seeds:
        test_users, ndcg = cold_baselines(dataset, source.name, seed)
        gap = max(abs(ndcg[m] - target[m]) for m in BASELINES)
        draws.append(Draw(seed, test_users, ndcg, gap))
    return draws


def summary_table(draws: Sequence[Draw]) -> str:
    target = reference()
    lines = [
        f"| baseline | mean ± sd over {len(draws)} draws | p5 - p95 | min - max "
        "| reference | reference percentile |",
        "|---|---|---|---|---|---|",
    ]
    for method in BASELINES:
        values = np.array([d.ndcg[method] for d in draws])
        p5, p95 = np.percentile(values, [5, 95])
        share_below = float((values < target[method]).mean())
        lines.append(
            f"| {method} | {values.mean():.4f} ± {values.std(ddof=1):.4f} "
            f"| {p5:.4f} - {p95:.4f} | {values.min():.4f} - {values.max():.4f} "
            f"| {target[method]:.3f} | {100 * share_below:.1f} |"
        )
    return "\n".join(lines)


def matches_table(draws: Sequence[Draw], tolerance: float) -> str:
    matches = sorted(
        (d for d in draws if d.max_abs_deviation <= tolerance),
        key=lambda d: (d.max_abs_deviation, d.seed),
    )
    header = " | ".join(BASELINES)
    lines = [
        f"{len(matches)} of {len(draws)} seeds within ±{tolerance} on all three baselines:",
        f"| seed | {header} | max abs deviation |",
        "|---" * (len(BASELINES) + 2) + "|",
    ]
    for d in matches:
        cells = " | ".join(f"{d.ndcg[m]:.4f}" for m in BASELINES)
        lines.append(f"| {d.seed} | {cells} | {d.max_abs_deviation:.4f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="RecBole atomic dataset dir")
    parser.add_argument("--seeds", type=positive_int, default=500, help="seeds 0 .. N-1")
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--json", type=Path, default=None, help="write every draw here")
    args = parser.parse_args(argv)
    try:
        draws = scan(args.data, range(args.seeds))
    except DataFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary_table(draws))
    print()
    print(matches_table(draws, args.tolerance))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(d) for d in draws], indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
