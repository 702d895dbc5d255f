"""Results of ``recserve evaluate`` and their Markdown / JSON forms."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.training.evaluate_protocol import DEFAULT_COLD_SEED

MARKDOWN_FILE = "evaluation.md"
# Smaller groups are listed but left out of the max gap: one or two users are noise.
MIN_GAP_GROUP_USERS = 20
JSON_FILE = "evaluation.json"


@dataclass(frozen=True)
class MethodScores:
    """One recommender under one protocol; all metrics @10, averaged over test users.

    ``group_ndcg[attribute][group]`` is the mean NDCG of the users in that group;
    ``group_long_tail[attribute][group]`` the long-tail share of their recommendations.
    """

    name: str
    ndcg: float
    recall: float
    hit_rate: float
    coverage: float
    long_tail_share: float
    group_ndcg: dict[str, dict[str, float]]
    group_long_tail: dict[str, dict[str, float]]
    reference_ndcg: float | None = None


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
class EvaluationReport:
    dataset: str
    results: list[ProtocolResult]
    cold_seed: int = DEFAULT_COLD_SEED  # which users the cold protocol drew (``cold_split``)
    notes: list[str] = field(default_factory=list)  # about the data, from ingest and checks

    def to_json(self) -> str:
        payload = asdict(self)
        for result, raw in zip(self.results, payload["results"], strict=True):
            for method, raw_method in zip(result.methods, raw["methods"], strict=True):
                raw_method["max_gap"] = {a: result.max_gap(method, a) for a in method.group_ndcg}
        return json.dumps(payload, indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        lines = [f"# Offline evaluation: {self.dataset}", ""]
        if self.notes:
            lines += ["Data notes:", "", *(f"- {note}" for note in self.notes), ""]
        if any(r.protocol == "cold" for r in self.results):
            lines += [f"Cold protocol: users drawn with seed {self.cold_seed}.", ""]
        for result in self.results:
            lines += _protocol_markdown(result)
        return "\n".join(lines)

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        markdown, payload = out_dir / MARKDOWN_FILE, out_dir / JSON_FILE
        markdown.write_text(self.to_markdown(), encoding="utf-8")
        payload.write_text(self.to_json(), encoding="utf-8")
        return markdown, payload


def _protocol_markdown(result: ProtocolResult) -> list[str]:
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    sources = ", ".join(f"{k} {v}" for k, v in sorted(result.served_sources.items()))
    lines = [
        f"## {result.protocol}: {result.test_users} test users, "
        f"{result.train_interactions} train interactions",
        "",
        f"Served answers by source: {sources}. Timings: {timings}.",
        "",
    ]
    if result.model_params:
        settings = ", ".join(f"{k} {_setting(v)}" for k, v in _flat(result.model_params))
        lines += [f"Served model's settings: {settings}.", ""]
    lines += [
        "| method | NDCG@10 | Recall@10 | HR@10 | coverage | long-tail share | reference NDCG@10 |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in result.methods:
        reference = f"{m.reference_ndcg:.3f}" if m.reference_ndcg is not None else ""
        lines.append(
            f"| {m.name} | {m.ndcg:.4f} | {m.recall:.4f} | {m.hit_rate:.4f} | "
            f"{m.coverage:.3f} | {m.long_tail_share:.3f} | {reference} |"
        )
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
