"""What each part of the served model adds, on the evaluation's own splits.

```bash
python -m loadtests.ablation --data ../shared/data/ml-100k                 # warm
python -m loadtests.ablation --data ../shared/data/ml-100k --protocol cold --cold-draws 10
```

For each split (the warm protocol, or each cold draw, seeds 0 .. N-1, as ``recserve
evaluate`` draws them) the dense hybrid is tuned and fitted on the train part exactly as
``recserve build`` tunes it (``train_hybrid``, attribute tokens as the build's feature tables
make them). The test users are then ranked by the numpy reference the exported ONNX graph
reproduces, first with the tuned model, then with one part's weight set to zero and nothing
retuned: the drop is what that part adds to the tuned blend. Every weight the tuning left
above zero is a part. The two-stage model (catalogues beyond ``RECSERVE_DENSE_MAX_ITEMS``) is
not covered.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from app.cli import positive_int
from app.data.types import ITEM_ID, USER_ID, DataFormatError, Dataset
from app.settings import Settings
from app.training.evaluate_baselines import K, UserFeatures, attribute_tokens_by_id
from app.training.evaluate_data import ingested_copy
from app.training.hybrid import HybridParams, HybridRecommender
from app.training.metrics import user_metrics
from app.training.recommender import recommend_in_blocks
from app.training.split import protocol_split
from app.training.tuning import train_hybrid
from app.training.types import training_data_from

FULL = "tuned model"


@dataclass(frozen=True)
class Variant:
    """One variant over the splits: NDCG@K per split, and its paired drop from the full model."""

    name: str
    ndcg: list[float]
    recall: list[float]
    hit_rate: list[float]


def weights(params: HybridParams) -> list[str]:
    """The blend's weights (``content_beta`` weighs content)."""
    return [
        f.name
        for f in fields(params)
        if (f.name.startswith("w_") or f.name == "content_beta")
        and isinstance(getattr(params, f.name), float)
    ]


def parts(params: HybridParams) -> list[str]:
    """The weights the tuning left above zero."""
    return [name for name in weights(params) if getattr(params, name) > 0]


def ablate(
    source: Path, protocol: str = "warm", cold_draws: int = 1, budget: float = 120.0
) -> dict[str, Any]:
    started = time.perf_counter()
    with ingested_copy(source, "the ablation") as copy:
        dataset = copy.dataset
    user_tokens = attribute_tokens_by_id(dataset.users, dataset.user_fields, USER_ID)
    item_tokens = attribute_tokens_by_id(dataset.items, dataset.item_fields, ITEM_ID)
    variants: dict[str, Variant] = {}
    chosen = []
    for seed in [0] if protocol == "warm" else range(cold_draws):
        split = protocol_split(protocol, dataset.interactions, seed)
        train = Dataset(split.train, dataset.users, dataset.items)
        data = training_data_from(train, user_tokens, item_tokens)
        if data.n_items > Settings().dense_max_items:
            raise DataFormatError(f"{source}: {data.n_items} items take the two-stage model")
        model, _ = train_hybrid(data, time_budget_seconds=budget)
        chosen.append(model.params.as_dict())
        features = UserFeatures(data, user_tokens).of(split.test_users)
        relevant = [split.relevant[u] for u in split.test_users]
        full = user_metrics(recommend_in_blocks(model, *features, K), relevant, K)
        scored = {FULL: full}
        for name in weights(model.params):
            # A weight already at zero: switching it off changes nothing on this split.
            scored[f"without {name}"] = full
            if name in parts(model.params):
                zeroed: dict[str, Any] = {name: 0.0}
                without = HybridRecommender(replace(model.params, **zeroed)).fit(data)
                lists = recommend_in_blocks(without, *features, K)
                scored[f"without {name}"] = user_metrics(lists, relevant, K)
        for label, metrics in scored.items():
            variant = variants.setdefault(label, Variant(label, [], [], []))
            variant.ndcg.append(float(metrics.ndcg.mean()))
            variant.recall.append(float(metrics.recall.mean()))
            variant.hit_rate.append(float(metrics.hit.mean()))
    used = {f"without {name}" for params in chosen for name in parts(HybridParams(**params))}
    return {
        "dataset": source.name,
        "protocol": protocol,
        "splits": 1 if protocol == "warm" else cold_draws,
        "variants": [asdict(v) for v in variants.values() if v.name in {FULL, *used}],
        "tuned_params": chosen,
        "seconds": round(time.perf_counter() - started, 1),
    }


def format_table(report: dict[str, Any]) -> str:
    splits = report["splits"]
    over = "" if splits == 1 else f" (mean ± sd over {splits} draws)"
    lines = [
        f"{report['dataset']}, {report['protocol']}{over}, {report['seconds']:.0f} s",
        "",
        f"| variant | NDCG@{K} | change | Recall@{K} | HR@{K} |",
        "|---|---|---|---|---|",
    ]
    full = next(v for v in report["variants"] if v["name"] == FULL)["ndcg"]
    for v in report["variants"]:
        change = [a - b for a, b in zip(v["ndcg"], full, strict=True)]
        lines.append(
            f"| {v['name']} | {_spread(v['ndcg'])} | {_spread(change, signed=True)} | "
            f"{_spread(v['recall'])} | {_spread(v['hit_rate'])} |"
        )
    return "\n".join(lines)


def _spread(values: Sequence[float], *, signed: bool = False) -> str:
    mean = f"{statistics.fmean(values):+.4f}" if signed else f"{statistics.fmean(values):.4f}"
    return mean if len(values) == 1 else f"{mean} ± {statistics.stdev(values):.4f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="RecBole atomic dataset dir")
    parser.add_argument("--protocol", choices=("warm", "cold"), default="warm")
    parser.add_argument("--cold-draws", type=positive_int, default=10, help="seeds 0 .. N-1")
    parser.add_argument("--tuning-budget", type=positive_int, default=120, help="seconds")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args(argv)
    try:
        report = ablate(args.data, args.protocol, args.cold_draws, float(args.tuning_budget))
    except DataFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
