"""``recserve build``: data -> Feast features -> tuned hybrid model -> ONNX -> published version.

The model reads its attribute tokens from the same offline feature tables that Feast serves,
so the strings it was trained on are exactly the strings serving looks up.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from app.artifacts import CATALOGUE_FILE, ModelManifest, publish
from app.data.ingest import ingest, load_dataset
from app.data.report import IngestReport
from app.features.offline import FeatureTablesReport, build_feature_tables
from app.features.schema import (
    ITEM_FEATURES_VIEW,
    ITEM_JOIN_KEY,
    USER_ATTRIBUTES_VIEW,
    USER_JOIN_KEY,
)
from app.features.store import apply_and_materialize
from app.privacy.offline import drop_erased_from_ingested
from app.settings import Settings
from app.training.catalogue import catalogue_json
from app.training.export import export_model
from app.training.segment_job import write_segments
from app.training.segments import SegmentsReport
from app.training.tuning import TuningReport, train_hybrid
from app.training.types import training_data_from


@dataclass(frozen=True)
class BuildResult:
    ingest: IngestReport
    features: FeatureTablesReport
    segments: SegmentsReport
    tuning: TuningReport
    manifest: ModelManifest
    model_dir: Path
    seconds: dict[str, float]

    def format(self) -> str:
        t = self.tuning
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        return "\n".join(
            [
                self.ingest.format(),
                f"features: {self.features.rows} rows written, materialized to the online store",
                self.segments.format(),
                f"model {self.manifest.version}: validation NDCG@10 warm {t.warm_ndcg:.4f} "
                f"(popularity {t.popularity_ndcg:.4f}), cold {t.cold_ndcg:.4f} (popularity "
                f"{t.cold_popularity_ndcg:.4f}); parity max diff "
                f"{self.manifest.parity.max_abs_diff:.2e}",
                f"published to {self.model_dir}",
                f"timings: {steps}",
            ]
        )


def build(
    settings: Settings,
    source: Path,
    *,
    tuning_budget_seconds: float = 120.0,
    logged_events: pd.DataFrame | None = None,
) -> BuildResult:
    """Run the whole batch job for ``source`` (plus ``logged_events``, the real-time events
    sunk from the event log) into ``settings.home`` and publish the model."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = now - clock
        clock = now

    report = ingest(source, settings.data_dir, logged_events=logged_events)
    drop_erased_from_ingested(settings)  # erased users never come back from the source
    dataset = load_dataset(settings.data_dir)
    lap("ingest")
    as_of = datetime.now(UTC).replace(microsecond=0)
    features = build_feature_tables(dataset, settings.offline_dir, as_of=as_of)
    _, segments = write_segments(settings, as_of=as_of)
    apply_and_materialize(settings, as_of=as_of)
    lap("features")
    data = training_data_from(
        dataset,
        _tokens(settings.offline_dir / f"{USER_ATTRIBUTES_VIEW}.parquet", USER_JOIN_KEY),
        _tokens(settings.offline_dir / f"{ITEM_FEATURES_VIEW}.parquet", ITEM_JOIN_KEY),
    )
    model, tuning = train_hybrid(data, time_budget_seconds=tuning_budget_seconds)
    lap("train")
    version = as_of.strftime("%Y%m%dT%H%M%SZ") + "-" + report.fingerprint.split(":")[-1][:8]
    root = settings.model_root
    root.mkdir(parents=True, exist_ok=True)
    staged = root / f".staging-{uuid.uuid4().hex}"
    manifest = export_model(
        model,
        staged,
        version=version,
        data_fingerprint=report.fingerprint,
        offline_metrics={
            "validation_ndcg@10_warm": tuning.warm_ndcg,
            "validation_ndcg@10_cold": tuning.cold_ndcg,
            "validation_ndcg@10_popularity": tuning.popularity_ndcg,
            "validation_ndcg@10_cold_popularity": tuning.cold_popularity_ndcg,
        },
        extra_files={CATALOGUE_FILE: catalogue_json(dataset.items)},
    )
    model_dir = publish(root, staged, version)
    lap("export")
    return BuildResult(report, features, segments, tuning, manifest, model_dir, seconds)


def _tokens(path: Path, id_column: str) -> dict[str, list[str]]:
    table = pd.read_parquet(path, columns=[id_column, "attribute_tokens"])
    return {
        str(entity): list(tokens)
        for entity, tokens in zip(table[id_column], table["attribute_tokens"], strict=True)
    }
