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


class NoUsersToSegment(ValueError):
    """The behaviour table has no user: segmenting would publish k=0."""


def write_segments(
    settings: Settings,
    *,
    as_of: datetime,
    offline_dir: Path | None = None,
    out_dir: Path | None = None,
) -> tuple[pd.DataFrame, SegmentsReport]:
    """Cluster the users of the offline tables in ``offline_dir`` (default: the home's) and
    write the ``user_segments`` table (stamped ``as_of``) plus ``segments.json`` to ``out_dir``
    (default: ``offline_dir``). Returns the rows and the report. Raises ``NoUsersToSegment``
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
        behaviour, attribute_users.astype(str).tolist(), n_clusters=settings.segment_clusters
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    write_view_table(table, out, USER_SEGMENTS_VIEW, as_of)
    _write_report(out / REPORT_FILE, report)
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
