"""``recserve build``: data -> Feast features -> tuned hybrid model -> ONNX -> published version.

The model reads its attribute tokens from the same offline feature tables that Feast serves,
so the strings it was trained on are exactly the strings serving looks up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from app.artifacts import (
    CATALOGUE_FILE,
    CATALOGUE_PARQUET_FILE,
    DRIFT_REFERENCE_FILE,
    ModelManifest,
)
from app.batch.gates import check_ingest
from app.batch.transaction import build_transaction, commit
from app.data.ingest import ingest, load_dataset
from app.data.report import IngestReport
from app.data.types import INTERACTIONS_FILE, Dataset
from app.data.versions import BuildRecord, current_record
from app.features.offline import FeatureTablesReport, build_feature_tables
from app.features.schema import (
    ITEM_FEATURES_VIEW,
    ITEM_JOIN_KEY,
    USER_ATTRIBUTES_VIEW,
    USER_BEHAVIOUR_VIEW,
    USER_JOIN_KEY,
    USER_SEGMENTS_VIEW,
)
from app.privacy.offline import drop_erased_from_ingested
from app.privacy.pseudonym import Pseudonymizer
from app.settings import Settings
from app.training import progress
from app.training.catalogue import catalogue_items, catalogue_json, catalogue_parquet
from app.training.drift_reference import drift_reference, hybrid_top_scores
from app.training.engine import batch_engine
from app.training.export import Probe, export_model
from app.training.export_two_stage import export_two_stage
from app.training.repeat_export import fit_repeat_model, write_repeat_model
from app.training.segment_job import write_segments
from app.training.segments import SegmentsReport
from app.training.tuning import TuningReport, scaled_budget, train_hybrid
from app.training.two_stage_tuning import TwoStageTuningReport, train_two_stage
from app.training.types import TrainingData, training_data_from

# Offline metrics the build's summary prints beside the validation NDCG.
SHOWN_METRICS = ("ann_recall", "candidate_recall", "candidates_per", "validation_ndcg@10_repeat")
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
    record: BuildRecord
    warnings: list[str]
    engine: str = "local"

    def format(self) -> str:
        t = self.tuning
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        return "\n".join(
            [
                self.ingest.format(),
                *(f"warning: {warning}" for warning in self.warnings),
                f"features: {self.features.rows} rows written, materialized to the online store",
                self.segments.format(),
                f"model {self.manifest.version}: validation NDCG@10 warm {t.warm_ndcg:.4f} "
                f"(popularity {t.popularity_ndcg:.4f}), cold {t.cold_ndcg:.4f} (popularity "
                f"{t.cold_popularity_ndcg:.4f}); parity max diff "
                f"{self.manifest.parity.max_abs_diff:.2e}",
                *(
                    f"{name}: {value:.3f}"
                    for name, value in self.manifest.offline_metrics.items()
                    if name.startswith(SHOWN_METRICS)
                ),
                f"published to {self.model_dir} as data version {self.record.data_version}",
                f"timings ({self.engine} engine): {steps}",
            ]
        )


def build(
    settings: Settings,
    source: Path,
    *,
    tuning_budget_seconds: float | None = None,
    logged_events: pd.DataFrame | None = None,
) -> BuildResult:
    """Run the whole batch job for ``source`` (plus ``logged_events``, the real-time events
    sunk from the event log) into ``settings.home`` and publish the model. The tuning budget
    defaults to one that grows with the data (``scaled_budget``)."""
    seconds: dict[str, float] = {}
    with (
        build_transaction(settings, source) as stage,
        batch_engine(settings, stage.root / "engine") as engine,
    ):
        with progress.stage("ingest", seconds):
            report = ingest(
                source,
                stage.data_dir,
                logged_events=logged_events,
                interactions_validator=engine.interactions_validator,
            )
            drop_erased_from_ingested(settings, stage.data_dir)  # erased users never come back
            warnings = check_ingest(
                report,
                current_record(settings.versions_dir),
                settings.build_gates,
                stage.quarantine_hint(report),
            )
            dataset = load_dataset(stage.data_dir)
        log.info("ingest summary:\n%s", report.format())  # now, not after training
        as_of = datetime.now(UTC).replace(microsecond=0)
        with progress.stage("features", seconds):
            features = build_feature_tables(
                dataset,
                stage.offline_dir,
                as_of=as_of,
                aggregate=engine.aggregator(stage.data_dir / INTERACTIONS_FILE),
            )
            _, segments = write_segments(
                settings, as_of=as_of, offline_dir=stage.offline_dir, kmeans=engine.kmeans
            )
        data = training_data_from(
            dataset,
            _tokens(stage.offline_dir / f"{USER_ATTRIBUTES_VIEW}.parquet", USER_JOIN_KEY),
            _tokens(stage.offline_dir / f"{ITEM_FEATURES_VIEW}.parquet", ITEM_JOIN_KEY),
        )
        version = as_of.strftime("%Y%m%dT%H%M%SZ") + "-" + report.fingerprint.split(":")[-1][:8]
        staged = stage.model_dir
        tuning: TuningReport | TwoStageTuningReport
        budget = tuning_budget_seconds or scaled_budget(len(data.user_index))
        if data.n_items > settings.dense_max_items:
            with progress.stage("train", seconds):
                two_stage, tuning = train_two_stage(
                    data, time_budget_seconds=budget, statistics=engine.statistics
                )
            with progress.stage("export", seconds):
                manifest, _ = export_two_stage(
                    two_stage,
                    staged,
                    version=version,
                    data_fingerprint=report.fingerprint,
                    offline_metrics=_offline_metrics(tuning),
                    recall_users=_recall_users(data, two_stage.params.history_max),
                    extra_files={
                        CATALOGUE_PARQUET_FILE: catalogue_parquet(dataset.items),
                        DRIFT_REFERENCE_FILE: _drift_reference(dataset, []),
                    },
                )
        else:
            with progress.stage("train", seconds):
                model, tuning = train_hybrid(
                    data, time_budget_seconds=budget, statistics=engine.statistics
                )
            with progress.stage("export", seconds):
                manifest = export_model(
                    model,
                    staged,
                    version=version,
                    data_fingerprint=report.fingerprint,
                    offline_metrics=_offline_metrics(tuning),
                    extra_files={
                        CATALOGUE_FILE: catalogue_json(dataset.items),
                        DRIFT_REFERENCE_FILE: _drift_reference(
                            dataset, hybrid_top_scores(model, data)
                        ),
                    },
                )
        with progress.stage("repeat", seconds):
            pseudonyms = Pseudonymizer.from_settings(settings)
            repeats = fit_repeat_model(
                dataset.interactions, data.user_ids, data.item_ids, pseudonyms.of
            )
            manifest = write_repeat_model(repeats, staged)
        with progress.stage("publish", seconds):
            record = commit(
                stage,
                report=report,
                model_version=version,
                as_of=as_of,
                online_views=_online_views(settings, features),
            )
    model_dir = settings.model_root / version
    return BuildResult(
        report,
        features,
        segments,
        tuning,
        manifest,
        model_dir,
        seconds,
        record,
        warnings,
        settings.batch_engine,
    )


def _drift_reference(dataset: Dataset, top_scores: list[float]) -> bytes:
    """``drift_reference.json``; a two-stage model's ranking scores candidates only, so it has
    no score deciles (``top_scores`` empty)."""
    category_of = {
        entry.item_id: entry.categories[0]
        for entry in catalogue_items(dataset.items)
        if entry.categories
    }
    return drift_reference(dataset.interactions, category_of, top_scores).model_dump_json().encode()


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
