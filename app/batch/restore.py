"""A rollback: an earlier data version, and the model trained on it, current again without a
build."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow.parquet as pq

from app.artifacts import point_current
from app.batch.gates import BuildRefused
from app.batch.transaction import (
    DATA_TABLES,
    OFFLINE_VIEWS,
    Stage,
    build_transaction,
    switch_in,
)
from app.batch.vacuum import vacuumed_versions
from app.data.versions import (
    BuildRecord,
    append_record,
    export_versions,
    next_data_version,
    read_history,
    restore_side_files,
)
from app.features.offline import write_view_table
from app.features.schema import EVENT_TIMESTAMP
from app.features.store import apply_and_materialize
from app.privacy.offline import drop_erased_from_ingested
from app.settings import Settings


class RollbackRefused(BuildRefused):
    """The version asked for cannot be restored (unknown, or its model is gone)."""


def rollback(settings: Settings, to_version: int) -> BuildRecord:
    """Make data version ``to_version`` current again with the model trained on it: its tables
    are exported from their Delta versions, users erased since are dropped again, the online
    store is re-materialised from them and ``CURRENT`` names its model. Recorded as a new
    data version pointing at the same table versions."""
    target = _published(settings, to_version)
    with build_transaction(settings, None) as stage:
        _export(stage, target)
        as_of = datetime.now(UTC).replace(microsecond=0)
        # Restamped: the online store keeps a row only when it is newer than the one it holds.
        for view in OFFLINE_VIEWS:
            path = stage.offline_dir / f"{view}.parquet"
            table = pq.read_table(path).drop_columns([EVENT_TIMESTAMP])
            write_view_table(table, stage.offline_dir, view, as_of)
        switch_in(settings, stage, lambda: apply_and_materialize(settings, as_of=as_of))
        assert target.model_version is not None  # checked by _published
        point_current(settings.model_root, target.model_version)
        record = target.model_copy(
            update={
                "run_id": stage.run_id,
                "started_at": stage.started_at,
                "finished_at": datetime.now(UTC),
                "outcome": "rolled back",
                "message": f"to data version {to_version}",
                "data_version": next_data_version(settings.versions_dir),
                "source": None,
            }
        )
        append_record(settings.versions_dir, record)
    return record


def _published(settings: Settings, version: int) -> BuildRecord:
    matches = [r for r in read_history(settings.versions_dir) if r.data_version == version]
    if not matches:
        raise RollbackRefused(
            f"no data version {version}; `recserve data history` lists the versions there are"
        )
    if version in vacuumed_versions(settings.versions_dir):
        raise RollbackRefused(
            f"data version {version} was vacuumed (`recserve data vacuum`); choose a later version"
        )
    target = matches[-1]
    model = target.model_version
    if model is None or not (settings.model_root / model).is_dir():
        raise RollbackRefused(
            f"data version {version}: its model {model or '(none)'} is no longer in "
            f"{settings.model_root}; choose a later version"
        )
    return target


def _export(stage: Stage, target: BuildRecord) -> None:
    settings = stage.settings
    targets = {name: stage.data_dir / file for name, file in DATA_TABLES.items()} | {
        view: stage.offline_dir / f"{view}.parquet" for view in OFFLINE_VIEWS
    }
    export_versions(settings.versions_dir, target.tables, targets)
    restore_side_files(target.files, stage.directories())
    drop_erased_from_ingested(settings, stage.data_dir)
    drop_erased_from_ingested(settings, stage.offline_dir)
