"""What the operator console shows, gathered from files and the metrics registry.

Pure reads with no side effects: model manifests under the models directory, the offline
evaluation report when ``recserve evaluate`` wrote one, and cache / fallback counters parsed
from the same exposition ``/metrics`` serves (so with several workers they are aggregated).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from app.artifacts import ModelManifest, current_version, read_manifest
from app.monitoring.timeseries import current_samples, totals_by

log = logging.getLogger(__name__)

EVALUATION_JSON = Path("evaluation") / "evaluation.json"  # under HOME, `recserve evaluate`
EVALUATION_METRICS = ("ndcg", "recall", "hit_rate", "coverage", "long_tail_share")


@dataclass(frozen=True, slots=True)
class ModelRow:
    manifest: ModelManifest
    published: bool  # named by CURRENT
    served: bool  # the version this process serves


def model_versions(model_root: Path, served_version: str) -> list[ModelRow]:
    """Every readable model version, newest first; unreadable directories are skipped."""
    published = current_version(model_root) if model_root.is_dir() else None
    rows = []
    for directory in sorted(model_root.iterdir()) if model_root.is_dir() else ():
        if not directory.is_dir() or directory.name.startswith("."):
            continue
        try:
            manifest = read_manifest(directory)
        except (OSError, ValidationError, ValueError) as exc:
            log.info("console skips %s: %s", directory, exc)
            continue
        rows.append(
            ModelRow(manifest, manifest.version == published, manifest.version == served_version)
        )
    rows.sort(key=lambda row: row.manifest.trained_at, reverse=True)
    return rows


def metric_label(name: str) -> str:
    """A manifest's metric key as a column header: ``validation_ndcg@10_warm`` reads
    ``ndcg@10 warm`` (the page says they come from the validation split)."""
    return name.removeprefix("validation_").replace("_", " ")


def number(value: float) -> str:
    """Whole numbers (trial counts, sizes) without decimals, other values to 4 places."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4f}"


def example_user_ids(data_dir: Path, count: int = 5) -> list[str]:
    """A few ids of users with interactions, from the first rows of the ingested table (no
    full read: the table may hold millions of rows); none when there is no table."""
    path = data_dir / "interactions.parquet"
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=500, columns=["user_id"])
        first = next(batches, None)
    except (OSError, pa.ArrowException) as exc:
        log.info("console has no example users: %s", exc)
        return []
    if first is None:
        return []
    return list(dict.fromkeys(str(u) for u in first.column(0).to_pylist()))[:count]


def offline_metric_names(rows: list[ModelRow]) -> list[str]:
    return sorted({name for row in rows for name in row.manifest.offline_metrics})


def evaluation_report(home: Path) -> dict[str, Any] | None:
    """The JSON report of ``recserve evaluate`` (default location), or None."""
    path = home / EVALUATION_JSON
    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report


@dataclass(frozen=True, slots=True)
class TierHealth:
    tier: str
    hits: float
    misses: float
    errors: float

    @property
    def hit_ratio(self) -> float | None:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None


@dataclass(frozen=True, slots=True)
class ServingHealth:
    tiers: list[TierHealth]
    recommend_requests: float
    by_source: dict[str, float]  # /recommend answers by how they were made
    fallbacks: dict[str, float]  # by reason

    @property
    def fallback_ratio(self) -> float | None:
        """Share of ``/recommend`` answers made by the popularity fallback (the reasons
        table also counts the console's own lookups)."""
        if not self.recommend_requests:
            return None
        return self.by_source.get("popular", 0.0) / self.recommend_requests


def serving_health() -> ServingHealth:
    """Cache and fallback counters since the process (or the multiprocess directory) began."""
    samples = current_samples()

    def total(name: str, **labels: str) -> float:
        return sum(
            s.value for s in samples if s.name == name and labels.items() <= s.labels.items()
        )

    lookups = "recserve_cache_lookups_total"
    tiers = sorted(
        totals_by(samples, lookups, "tier")
        | totals_by(samples, "recserve_cache_errors_total", "tier")
    )
    answered = "recserve_api_request_seconds_count"
    return ServingHealth(
        tiers=[
            TierHealth(
                tier,
                total(lookups, tier=tier, result="hit"),
                total(lookups, tier=tier, result="miss"),
                total("recserve_cache_errors_total", tier=tier),
            )
            for tier in tiers
        ],
        recommend_requests=total(answered, endpoint="/recommend"),
        by_source=totals_by(samples, answered, "source", endpoint="/recommend"),
        fallbacks=totals_by(samples, "recserve_serving_fallbacks_total", "reason"),
    )
