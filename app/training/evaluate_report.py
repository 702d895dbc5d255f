"""Results of ``recserve evaluate`` and their Markdown / JSON forms.

The cold protocol is one draw of users per seed; its figures are summarised over the draws
(mean ± sd) and the served model is compared with each baseline draw by draw (paired), since
the draws move every method together.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MARKDOWN_FILE = "evaluation.md"
JSON_FILE = "evaluation.json"
# Smaller groups are listed but left out of the max gap: one or two users are noise.
MIN_GAP_GROUP_USERS = 20
SERVED = "served model"
BUDGET_NOTE = (
    "the build's tuning ran out of its time budget and kept the best it had found; on a busy "
    "machine raise --tuning-budget"
)


@dataclass(frozen=True)
class MethodScores:
    """One recommender under one protocol; all metrics @10, averaged over test users.

    ``group_ndcg[attribute][group]`` is the mean NDCG of the users in that group;
    ``group_long_tail[attribute][group]`` the long-tail share of their recommendations;
    ``params`` the hyperparameters chosen on validation (baselines).
    """

    name: str
    ndcg: float
    recall: float
    hit_rate: float
    coverage: float
    long_tail_share: float
    group_ndcg: dict[str, dict[str, float]]
    group_long_tail: dict[str, dict[str, float]]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProtocolResult:
    protocol: str
    test_users: int
    train_interactions: int
    group_sizes: dict[str, dict[str, int]]
    served_sources: dict[str, int]
    methods: list[MethodScores]
    seconds: dict[str, float]
    # What the build's tuning chose for the served model (its manifest's hyperparameters).
    model_params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None  # the cold protocol's draw; None for warm
    # The build's tuning ran out of its wall-clock budget: its search stopped early.
    tuning_budget_exhausted: bool = False

    def method(self, name: str) -> MethodScores:
        return next(m for m in self.methods if m.name == name)

    def max_gap(self, method: MethodScores, attribute: str) -> float:
        """Largest NDCG difference between two groups of ``attribute`` with at least
        ``MIN_GAP_GROUP_USERS`` users (0 when fewer than two such groups)."""
        sizes = self.group_sizes.get(attribute, {})
        values = [
            ndcg
            for group, ndcg in method.group_ndcg.get(attribute, {}).items()
            if sizes.get(group, 0) >= MIN_GAP_GROUP_USERS
        ]
        return max(values) - min(values) if values else 0.0


@dataclass(frozen=True)
class Spread:
    mean: float
    sd: float  # sample sd over draws; 0 with one draw

    def format(self) -> str:
        return f"{self.mean:.4f} ± {self.sd:.4f}"


@dataclass(frozen=True)
class DrawSummary:
    """One method over the cold draws; for a baseline, how the served model fared against it
    on the same draws: ``wins`` of ``draws`` with a higher NDCG@10, and the paired
    difference (served - baseline)."""

    name: str
    ndcg: Spread
    recall: Spread
    hit_rate: Spread
    draws: int
    wins: int | None = None
    difference: Spread | None = None


def _spread(values: list[float]) -> Spread:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return Spread(statistics.fmean(values), sd)


@dataclass(frozen=True)
class EvaluationReport:
    dataset: str
    results: list[ProtocolResult]
    notes: list[str] = field(default_factory=list)  # about the data, from ingest and checks
    seconds: float = 0.0

    def draws(self, protocol: str = "cold") -> list[ProtocolResult]:
        return [r for r in self.results if r.protocol == protocol]

    def cold_summary(self) -> list[DrawSummary]:
        """Per method, its figures over the cold draws (methods every draw reports)."""
        draws = self.draws()
        if not draws:
            return []
        names = [m.name for m in draws[0].methods if all(_has(r, m.name) for r in draws)]
        served = [r.method(SERVED).ndcg for r in draws] if SERVED in names else None
        summaries = []
        for name in names:
            scores = [r.method(name) for r in draws]
            ndcg = [s.ndcg for s in scores]
            paired = name != SERVED and served is not None
            diffs = [a - b for a, b in zip(served or [], ndcg, strict=False)] if paired else None
            summaries.append(
                DrawSummary(
                    name=name,
                    ndcg=_spread(ndcg),
                    recall=_spread([s.recall for s in scores]),
                    hit_rate=_spread([s.hit_rate for s in scores]),
                    draws=len(draws),
                    wins=sum(d > 0 for d in diffs) if diffs is not None else None,
                    difference=_spread(diffs) if diffs is not None else None,
                )
            )
        return summaries

    def to_json(self) -> str:
        payload = asdict(self)
        for result, raw in zip(self.results, payload["results"], strict=True):
            for method, raw_method in zip(result.methods, raw["methods"], strict=True):
                raw_method["max_gap"] = {a: result.max_gap(method, a) for a in method.group_ndcg}
        payload["cold_summary"] = [asdict(s) for s in self.cold_summary()]
        return json.dumps(payload, indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        lines = [f"# Offline evaluation: {self.dataset}", ""]
        if self.notes:
            lines += ["Data notes:", "", *(f"- {note}" for note in self.notes), ""]
        for result in self.results:  # one run each (warm, repeat); cold draws are summarised
            if result.protocol != "cold":
                title = f"{result.protocol}: {result.test_users} test users"
                lines += _protocol_markdown(result, title)
        draws = self.draws()
        if draws:
            lines += _cold_markdown(self.cold_summary(), draws)
        lines.append(f"Evaluated in {self.seconds:.0f} s.")
        return "\n".join(lines)

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        markdown, payload = out_dir / MARKDOWN_FILE, out_dir / JSON_FILE
        markdown.write_text(self.to_markdown(), encoding="utf-8")
        payload.write_text(self.to_json(), encoding="utf-8")
        return markdown, payload


def _has(result: ProtocolResult, name: str) -> bool:
    return any(m.name == name for m in result.methods)


def _cold_markdown(summary: list[DrawSummary], draws: list[ProtocolResult]) -> list[str]:
    seeds = ", ".join(str(r.seed) for r in draws)
    users = sorted({r.test_users for r in draws})
    lines = [
        f"## cold: {len(draws)} draws of {'/'.join(map(str, users))} users (seeds {seeds})",
        "",
        "| method | NDCG@10 | Recall@10 | HR@10 | served wins | served - method | chosen |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        wins = f"{s.wins}/{s.draws}" if s.wins is not None else ""
        difference = f"{s.difference.mean:+.4f} ± {s.difference.sd:.4f}" if s.difference else ""
        chosen = _chosen([r.method(s.name).params for r in draws])
        lines.append(
            f"| {s.name} | {s.ndcg.format()} | {s.recall.format()} | {s.hit_rate.format()} | "
            f"{wins} | {difference} | {chosen} |"
        )
    names = [s.name for s in summary]
    lines += [
        "",
        "mean ± sd over the draws; served wins: draws on which the served model's NDCG@10 is "
        "higher (paired, same users); served - method: the paired NDCG@10 difference.",
    ]
    starved = [str(r.seed) for r in draws if r.tuning_budget_exhausted]
    if starved:
        lines += ["", f"Warning, draws {', '.join(starved)}: {BUDGET_NOTE}."]
    lines += [
        "",
        "NDCG@10 per draw",
        "",
        "| seed | users | " + " | ".join(names) + " | build s |",
        "|---|---|" + "---|" * len(names) + "---|",
    ]
    for r in draws:
        cells = " | ".join(f"{r.method(n).ndcg:.4f}" for n in names)
        lines.append(f"| {r.seed} | {r.test_users} | {cells} | {r.seconds.get('build', 0):.0f} |")
    first = draws[0]
    lines.append("")
    lines += _protocol_markdown(first, f"cold, seed {first.seed} in detail")
    return lines


def _chosen(params: list[dict[str, Any]]) -> str:
    """The hyperparameters chosen over the draws, each with how many draws chose it."""
    counts: dict[str, int] = {}
    for p in params:
        if p:
            label = _params_label(p)
            counts[label] = counts.get(label, 0) + 1
    if len(counts) == 1:
        return next(iter(counts))
    return "; ".join(f"{label} ({n})" for label, n in sorted(counts.items(), key=lambda c: -c[1]))


def _params_label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_setting(v)}" for k, v in params.items() if k != "max_items")


def _protocol_markdown(result: ProtocolResult, title: str) -> list[str]:
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    sources = ", ".join(f"{k} {v}" for k, v in sorted(result.served_sources.items()))
    lines = [
        f"## {title}, {result.train_interactions} train interactions",
        "",
        f"Served answers by source: {sources}. Timings: {timings}.",
        "",
    ]
    if result.model_params:
        settings = ", ".join(f"{k} {_setting(v)}" for k, v in _flat(result.model_params))
        lines += [f"Served model's settings: {settings}.", ""]
    if result.tuning_budget_exhausted:
        lines += [f"Warning: {BUDGET_NOTE}.", ""]
    lines += [
        "| method | NDCG@10 | Recall@10 | HR@10 | coverage | long-tail share | chosen |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in result.methods:
        lines.append(
            f"| {m.name} | {m.ndcg:.4f} | {m.recall:.4f} | {m.hit_rate:.4f} | "
            f"{m.coverage:.3f} | {m.long_tail_share:.3f} | {_params_label(m.params)} |"
        )
    if not result.group_sizes:
        return [*lines, ""]
    names = [m.name for m in result.methods]
    lines += [
        "",
        "NDCG@10 by user group (long-tail share of each group's recommendations in brackets)",
        "",
        "| group | users | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for attribute, sizes in result.group_sizes.items():
        for group, size in sizes.items():
            cells = [
                f"{m.group_ndcg[attribute][group]:.4f} ({m.group_long_tail[attribute][group]:.2f})"
                for m in result.methods
            ]
            lines.append(f"| {attribute}={group} | {size} | " + " | ".join(cells) + " |")
        gaps = [f"{result.max_gap(m, attribute):.4f}" for m in result.methods]
        lines.append(
            f"| max gap ({attribute}, groups >= {MIN_GAP_GROUP_USERS} users) | | "
            + " | ".join(gaps)
            + " |"
        )
    return [*lines, ""]


def _flat(params: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(name, value)`` pairs with nested settings (the two-stage model's ``retrieval``)
    spelled ``retrieval.ann_candidates``."""
    pairs: list[tuple[str, Any]] = []
    for key, value in params.items():
        if isinstance(value, dict):
            pairs += _flat(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


def _setting(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
