"""A build as a transaction: everything is staged, checked, then switched in one short step.

A build writes its validated tables, offline features, segments and model under a staging
directory. Only when every step and every check succeeded does ``commit`` write the tables
as a new data version (Delta Lake), swap the staged directories in place of ``HOME/data`` and
``HOME/offline``, materialise the online store from them and publish the model. Any failure
before that leaves the home exactly as it was: same Parquet files, online store, model.
Every attempt, refused or not, is a line of the build history.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from app.artifacts import MANIFEST_FILE, publish, read_manifest
from app.batch.challenger import check_challenger
from app.batch.gates import BuildRefused
from app.data.ingest import QUARANTINE_DIR
from app.data.report import IngestReport
from app.data.types import (
    INTERACTIONS_FILE,
    ITEMS_FILE,
    SCHEMA_FILE,
    SUMMARY_FILE,
    USERS_FILE,
    DataFormatError,
)
from app.data.versions import (
    BuildRecord,
    append_record,
    next_data_version,
    side_files,
    write_versions,
)
from app.features.schema import (
    ITEM_FEATURES_VIEW,
    SEGMENTS_REPORT_FILE,
    USER_ATTRIBUTES_VIEW,
    USER_BEHAVIOUR_VIEW,
    USER_SEGMENTS_VIEW,
)
from app.features.store import apply_and_materialize
from app.settings import Settings

DATA_TABLES = {"interactions": INTERACTIONS_FILE, "users": USERS_FILE, "items": ITEMS_FILE}
OFFLINE_VIEWS = (USER_ATTRIBUTES_VIEW, USER_BEHAVIOUR_VIEW, ITEM_FEATURES_VIEW, USER_SEGMENTS_VIEW)
# Side files kept with each data version, by the directory they live in.
SIDE_FILES = {"data": (SCHEMA_FILE, SUMMARY_FILE), "offline": (SEGMENTS_REPORT_FILE,)}
REFUSED_DIR = "refused"
# Refused runs whose quarantine is kept: a source that stays broken is retried every few
# minutes by the scheduler, and each run would otherwise keep a full copy of its rejects.
KEEP_REFUSED_RUNS = 5


@dataclass
class Stage:
    """Where one run writes before it is committed."""

    settings: Settings
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    source: str | None = None

    @property
    def root(self) -> Path:
        return self.settings.versions_dir / f".staging-{self.run_id}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def offline_dir(self) -> Path:
        return self.root / "offline"

    @property
    def model_dir(self) -> Path:
        # Beside the published versions: publishing is then a rename on one file system.
        return self.settings.model_root / f".staging-{self.run_id}"

    @property
    def refused_dir(self) -> Path:
        """Where a refused run's quarantine and ingest summary are kept for inspection."""
        return self.settings.versions_dir / REFUSED_DIR / self.run_id

    def quarantine_hint(self, report: IngestReport) -> str:
        return f"; rows kept in {self.refused_dir / QUARANTINE_DIR}" if report.quarantined else ""

    def directories(self) -> dict[str, Path]:
        return {"data": self.data_dir, "offline": self.offline_dir}


@contextmanager
def build_transaction(settings: Settings, source: Path | None) -> Iterator[Stage]:
    """Stage a run; on a refusal keep its quarantine, record it and re-raise; always clean the
    staging. ``commit`` inside the block makes the run's result current."""
    stage = Stage(settings, source=None if source is None else str(source))
    _remove_leftovers(settings)
    stage.root.mkdir(parents=True)
    try:
        yield stage
    except (BuildRefused, DataFormatError) as exc:
        _keep_for_inspection(stage)
        _record(stage, "refused", str(exc))
        raise
    except Exception as exc:
        _record(stage, "failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        shutil.rmtree(stage.root, ignore_errors=True)
        shutil.rmtree(stage.model_dir, ignore_errors=True)


def commit(
    stage: Stage,
    *,
    report: IngestReport,
    model_version: str,
    as_of: datetime,
    online_views: Sequence[str] | None,
) -> BuildRecord:
    """Make the staged run current: new table versions, the model naming them, the staged
    directories switched in, the online store materialised from them, the model published
    (as the challenger of the published one when the rollout is enabled: ``challenger``)."""
    settings = stage.settings
    # Before anything is written: a refused challenger leaves the home as it was.
    gate = check_challenger(settings, read_manifest(stage.model_dir))
    parquet = {name: stage.data_dir / file for name, file in DATA_TABLES.items()} | {
        view: stage.offline_dir / f"{view}.parquet" for view in OFFLINE_VIEWS
    }
    tables = write_versions(settings.versions_dir, parquet)  # not referenced until recorded
    data_version = next_data_version(settings.versions_dir)
    _stamp_manifest(stage.model_dir, data_version, tables)
    files = side_files(stage.directories(), SIDE_FILES)
    rows = {name: _rows(path) for name, path in parquet.items()}
    switch_in(
        settings, stage, lambda: apply_and_materialize(settings, as_of=as_of, only=online_views)
    )
    publish(settings.model_root, stage.model_dir, model_version, as_challenger=gate is not None)
    record = BuildRecord(
        run_id=stage.run_id,
        started_at=stage.started_at,
        finished_at=datetime.now(UTC),
        outcome="published",
        message=f"model {model_version}"
        + ("" if gate is None else f", challenging {gate.champion}"),
        data_version=data_version,
        tables=tables,
        rows=rows,
        model_version=model_version,
        source=stage.source,
        source_columns={name: list(columns) for name, columns in report.source_columns.items()},
        files=files,
    )
    append_record(settings.versions_dir, record)
    return record


def switch_in(settings: Settings, stage: Stage, materialize: Callable[[], None]) -> None:
    """Swap the staged data and offline directories into the home, then run ``materialize``
    (which reads them); if it fails, the previous directories come back before re-raising."""
    pairs = ((stage.data_dir, settings.data_dir), (stage.offline_dir, settings.offline_dir))
    retired = {live: _swap(staged, live) for staged, live in pairs}
    try:
        materialize()
    except BaseException:
        for live, old in retired.items():
            shutil.rmtree(live, ignore_errors=True)
            if old is not None:
                os.replace(old, live)
        raise
    for old in retired.values():
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _swap(staged: Path, live: Path) -> Path | None:
    """Move ``live`` aside (returned) and ``staged`` into its place."""
    live.parent.mkdir(parents=True, exist_ok=True)
    retired = None
    if live.exists():
        retired = live.with_name(f".{live.name}.retired-{uuid.uuid4().hex}")
        os.replace(live, retired)
    os.replace(staged, live)
    return retired


def _remove_leftovers(settings: Settings) -> None:
    """Staging left by a run that was killed. Runs of one home are serialised (the batch lock),
    so none is in use when a new run starts."""
    for root in (settings.versions_dir, settings.model_root):
        for leftover in root.glob(".staging-*") if root.is_dir() else ():
            shutil.rmtree(leftover, ignore_errors=True)
    for live in (settings.data_dir, settings.offline_dir):
        retired = sorted(
            live.parent.glob(f".{live.name}.retired-*"), key=lambda p: p.stat().st_mtime
        )
        if retired and not live.exists():
            # Killed between moving the live copy aside and the staged one in: put it back.
            os.replace(retired.pop(), live)
        for leftover in retired:
            shutil.rmtree(leftover, ignore_errors=True)


def _stamp_manifest(model_dir: Path, data_version: int, tables: dict[str, int]) -> None:
    manifest = read_manifest(model_dir).model_copy(
        update={"data_version": data_version, "table_versions": tables}
    )
    (model_dir / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n")


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def _keep_for_inspection(stage: Stage) -> None:
    """Keep a refused run's quarantine files and ingest summary under ``refused_dir``."""
    for name in (QUARANTINE_DIR, SUMMARY_FILE):
        path = stage.data_dir / name
        if path.exists():
            stage.refused_dir.mkdir(parents=True, exist_ok=True)
            os.replace(path, stage.refused_dir / name)
    kept = sorted(stage.refused_dir.parent.glob("*"), key=lambda p: p.stat().st_mtime)
    for old in kept[:-KEEP_REFUSED_RUNS]:
        shutil.rmtree(old, ignore_errors=True)


def _record(stage: Stage, outcome: Literal["refused", "failed"], message: str) -> None:
    kept = stage.refused_dir if stage.refused_dir.exists() else None
    append_record(
        stage.settings.versions_dir,
        BuildRecord(
            run_id=stage.run_id,
            started_at=stage.started_at,
            finished_at=datetime.now(UTC),
            outcome=outcome,
            message=message,
            source=stage.source,
            quarantine_dir=None if kept is None else str(kept),
        ),
    )
