"""``recserve segment`` (and the segment step of ``build``): RFM K-Means over the offline
behaviour table, written as the ``user_segments`` Feast view; between builds, a refresh is a
data version of its own whose only changed table is ``user_segments``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from app.artifacts import current_version
from app.batch.gates import NoUsersToSegment
from app.batch.transaction import SIDE_FILES, build_transaction
from app.data.versions import (
    BuildRecord,
    append_record,
    current_record,
    next_data_version,
    side_files,
    write_versions,
)
from app.features.offline import write_view_table
from app.features.schema import (
    SEGMENTS_REPORT_FILE,
    USER_ATTRIBUTES_VIEW,
    USER_BEHAVIOUR_VIEW,
    USER_JOIN_KEY,
    USER_SEGMENTS_VIEW,
)
from app.features.store import apply_and_materialize
from app.settings import Settings
from app.training.engine import batch_engine
from app.training.segments import KMeansFit, SegmentsReport, assign_segments


def write_segments(
    settings: Settings,
    *,
    as_of: datetime,
    offline_dir: Path | None = None,
    out_dir: Path | None = None,
    kmeans: KMeansFit | None = None,
) -> tuple[pd.DataFrame, SegmentsReport]:
    """Cluster the users of the offline tables in ``offline_dir`` (default: the home's) and
    write the ``user_segments`` table (stamped ``as_of``) plus ``segments.json`` to ``out_dir``
    (default: ``offline_dir``), clustered by ``kmeans`` (default: in this process). Returns
    the rows and the report. Raises ``NoUsersToSegment``
    when no user has an interaction, before writing anything."""
    offline = settings.offline_dir if offline_dir is None else offline_dir
    out = offline if out_dir is None else out_dir
    behaviour = pd.read_parquet(
        offline / f"{USER_BEHAVIOUR_VIEW}.parquet",
        columns=[USER_JOIN_KEY, "last_event_at", "interaction_count", "monetary"],
    )
    if behaviour.empty:
        raise NoUsersToSegment(f"{offline}: no user has an interaction; nothing to segment")
    attribute_users = pd.read_parquet(
        offline / f"{USER_ATTRIBUTES_VIEW}.parquet", columns=[USER_JOIN_KEY]
    )[USER_JOIN_KEY]
    frame, report = assign_segments(
        behaviour,
        attribute_users.astype(str).tolist(),
        n_clusters=settings.segment_clusters,
        kmeans=kmeans,
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    write_view_table(table, out, USER_SEGMENTS_VIEW, as_of)
    _write_report(out / SEGMENTS_REPORT_FILE, report)
    return frame, report


def previous_segments(settings: Settings) -> dict[str, str]:
    """The segment each user had in the last written table (empty before the first run)."""
    path = settings.offline_dir / f"{USER_SEGMENTS_VIEW}.parquet"
    if not path.is_file():
        return {}
    table = pd.read_parquet(path, columns=[USER_JOIN_KEY, "segment"])
    return dict(zip(table[USER_JOIN_KEY].astype(str), table["segment"].astype(str), strict=True))


def _write_report(path: Path, report: SegmentsReport) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    staging.replace(path)


def refresh_segments(
    settings: Settings, clusters: int | None
) -> tuple[SegmentsReport, BuildRecord | None]:
    """``recserve segment``: re-cluster the current behaviour table, then switch the new
    ``user_segments`` in (a new data version when the home has versions) and materialise it.
    Raises ``NoUsersToSegment`` before anything changes when there is nobody to segment."""
    if clusters is not None:
        settings = settings.model_copy(update={"segment_clusters": clusters})
    with (
        build_transaction(settings, None) as stage,
        batch_engine(settings, stage.root / "engine") as engine,
    ):
        as_of = datetime.now(UTC).replace(microsecond=0)
        stage.offline_dir.mkdir(parents=True)
        frame, report = write_segments(
            settings, as_of=as_of, out_dir=stage.offline_dir, kmeans=engine.kmeans
        )
        current = current_record(settings.versions_dir)
        staged_table = stage.offline_dir / f"{USER_SEGMENTS_VIEW}.parquet"
        tables = write_versions(settings.versions_dir, {USER_SEGMENTS_VIEW: staged_table})
        for name in (f"{USER_SEGMENTS_VIEW}.parquet", SEGMENTS_REPORT_FILE):
            (stage.offline_dir / name).replace(settings.offline_dir / name)
        apply_and_materialize(settings, as_of=as_of, only=[USER_SEGMENTS_VIEW])
        if current is None:
            return report, None
        files = current.files | side_files({"offline": settings.offline_dir}, SIDE_FILES)
        record = current.model_copy(
            update={
                "run_id": stage.run_id,
                "started_at": stage.started_at,
                "finished_at": datetime.now(UTC),
                "outcome": "segments refreshed",
                "message": f"{len(report.segments)} segments",
                "data_version": next_data_version(settings.versions_dir),
                "tables": current.tables | tables,
                "rows": current.rows | {USER_SEGMENTS_VIEW: len(frame)},
                "model_version": current_version(settings.model_root),
                "files": files,
                "source": None,
            }
        )
        append_record(settings.versions_dir, record)
    return report, record
