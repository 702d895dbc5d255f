"""``recserve build``: data -> Feast features -> tuned hybrid model -> ONNX -> published version.

The model reads its attribute tokens from the same offline feature tables that Feast serves,
so the strings it was trained on are exactly the strings serving looks up.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from app.artifacts import CATALOGUE_FILE, CATALOGUE_PARQUET_FILE, ModelManifest, publish
from app.data.ingest import ingest, load_dataset
from app.data.report import IngestReport
from app.features.offline import FeatureTablesReport, build_feature_tables
from app.features.schema import (
    ITEM_FEATURES_VIEW,
    ITEM_JOIN_KEY,
    USER_ATTRIBUTES_VIEW,
    USER_BEHAVIOUR_VIEW,
    USER_JOIN_KEY,
    USER_SEGMENTS_VIEW,
)
from app.features.store import apply_and_materialize
from app.privacy.offline import drop_erased_from_ingested
from app.settings import Settings
from app.training.catalogue import catalogue_json, catalogue_parquet
from app.training.export import Probe, export_model
from app.training.export_two_stage import export_two_stage
from app.training.progress import stage
from app.training.segment_job import write_segments
from app.training.segments import SegmentsReport
from app.training.tuning import TuningReport, train_hybrid
from app.training.two_stage_tuning import TwoStageTuningReport, train_two_stage
from app.training.types import TrainingData, training_data_from

# Real users whose two-stage answers are compared with exact search at export.
RECALL_USERS = 100

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    ingest: IngestReport
    features: FeatureTablesReport
    segments: SegmentsReport
    tuning: TuningReport | TwoStageTuningReport
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
                *(
                    f"{name}: {value:.3f}"
                    for name, value in self.manifest.offline_metrics.items()
                    if name.startswith(("ann_recall", "candidate_recall", "candidates_per"))
                ),
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
    with stage("ingest", seconds):
        report = ingest(source, settings.data_dir, logged_events=logged_events)
        drop_erased_from_ingested(settings)  # erased users never come back from the source
        dataset = load_dataset(settings.data_dir)
    log.info("ingest summary:\n%s", report.format())  # now, not after training
    as_of = datetime.now(UTC).replace(microsecond=0)
    with stage("features", seconds):
        features = build_feature_tables(dataset, settings.offline_dir, as_of=as_of)
        _, segments = write_segments(settings, as_of=as_of)
        apply_and_materialize(settings, as_of=as_of, only=_online_views(settings, features))
    data = training_data_from(
        dataset,
        _tokens(settings.offline_dir / f"{USER_ATTRIBUTES_VIEW}.parquet", USER_JOIN_KEY),
        _tokens(settings.offline_dir / f"{ITEM_FEATURES_VIEW}.parquet", ITEM_JOIN_KEY),
    )
    version = as_of.strftime("%Y%m%dT%H%M%SZ") + "-" + report.fingerprint.split(":")[-1][:8]
    root = settings.model_root
    root.mkdir(parents=True, exist_ok=True)
    staged = root / f".staging-{uuid.uuid4().hex}"
    tuning: TuningReport | TwoStageTuningReport
    if data.n_items > settings.dense_max_items:
        with stage("train", seconds):
            two_stage, tuning = train_two_stage(data)
        with stage("export", seconds):
            manifest, _ = export_two_stage(
                two_stage,
                staged,
                version=version,
                data_fingerprint=report.fingerprint,
                offline_metrics=_offline_metrics(tuning),
                recall_users=_recall_users(data, two_stage.params.history_max),
                extra_files={CATALOGUE_PARQUET_FILE: catalogue_parquet(dataset.items)},
            )
            model_dir = publish(root, staged, version)
    else:
        with stage("train", seconds):
            model, tuning = train_hybrid(data, time_budget_seconds=tuning_budget_seconds)
        with stage("export", seconds):
            manifest = export_model(
                model,
                staged,
                version=version,
                data_fingerprint=report.fingerprint,
                offline_metrics=_offline_metrics(tuning),
                extra_files={CATALOGUE_FILE: catalogue_json(dataset.items)},
            )
            model_dir = publish(root, staged, version)
    return BuildResult(report, features, segments, tuning, manifest, model_dir, seconds)


def _online_views(settings: Settings, features: FeatureTablesReport) -> list[str] | None:
    """The views to copy to the online store: all (None), except item features for a
    catalogue too large for the dense model. Serving never reads them online (training reads
    the offline table), and their copy took half the features step at 100k items."""
    if features.rows[ITEM_FEATURES_VIEW] <= settings.dense_max_items:
        return None
    return [USER_ATTRIBUTES_VIEW, USER_BEHAVIOUR_VIEW, USER_SEGMENTS_VIEW]


def _offline_metrics(tuning: TuningReport | TwoStageTuningReport) -> dict[str, float]:
    return {
        "validation_ndcg@10_warm": tuning.warm_ndcg,
        "validation_ndcg@10_cold": tuning.cold_ndcg,
        "validation_ndcg@10_popularity": tuning.popularity_ndcg,
        "validation_ndcg@10_cold_popularity": tuning.cold_popularity_ndcg,
        **(
            {
                "validation_ndcg@10_warm_coordinate_search": tuning.coordinate_ndcg,
                "optuna_trials": float(tuning.optuna_trials),
            }
            if isinstance(tuning, TuningReport)
            else {}
        ),
    }


def _recall_users(data: TrainingData, history_max: int, seed: int = 0) -> list[Probe]:
    """Up to ``RECALL_USERS`` random users with a history, as serving would see them."""
    histories = data.histories(history_max)
    tokens = data.user_token_lists()
    with_history = np.flatnonzero([len(h) > 0 for h in histories])
    users = np.random.default_rng(seed).permutation(with_history)[:RECALL_USERS]
    return [Probe(histories[u], tokens[u]) for u in np.sort(users)]


def _tokens(path: Path, id_column: str) -> dict[str, list[str]]:
    table = pd.read_parquet(path, columns=[id_column, "attribute_tokens"])
    return {
        str(entity): list(tokens)
        for entity, tokens in zip(table[id_column], table["attribute_tokens"], strict=True)
    }
