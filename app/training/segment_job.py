"""``recserve segment`` (and the segment step of ``build``): RFM K-Means over the offline
behaviour table, written as the ``user_segments`` Feast view."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from app.features.offline import write_view_table
from app.features.schema import (
    USER_ATTRIBUTES_VIEW,
    USER_BEHAVIOUR_VIEW,
    USER_JOIN_KEY,
    USER_SEGMENTS_VIEW,
)
from app.settings import Settings
from app.training.segments import SegmentsReport, assign_segments

REPORT_FILE = "segments.json"


def write_segments(settings: Settings, *, as_of: datetime) -> tuple[pd.DataFrame, SegmentsReport]:
    """Cluster the users of the current offline tables and write the ``user_segments`` table
    (stamped ``as_of``) plus ``segments.json`` beside it. Returns the rows and the report."""
    offline = settings.offline_dir
    behaviour = pd.read_parquet(
        offline / f"{USER_BEHAVIOUR_VIEW}.parquet",
        columns=[USER_JOIN_KEY, "last_event_at", "interaction_count", "monetary"],
    )
    attribute_users = pd.read_parquet(
        offline / f"{USER_ATTRIBUTES_VIEW}.parquet", columns=[USER_JOIN_KEY]
    )[USER_JOIN_KEY]
    frame, report = assign_segments(
        behaviour, attribute_users.astype(str).tolist(), n_clusters=settings.segment_clusters
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    write_view_table(table, offline, USER_SEGMENTS_VIEW, as_of)
    _write_report(offline / REPORT_FILE, report)
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
