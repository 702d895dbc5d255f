"""``recserve data vacuum --keep N``: drop the data versions older than the last N.

Each Delta table keeps the files of the table versions the last N data versions name (Delta's
vacuum with those versions kept; the newest version of every table is never removed), and
the models trained on the dropped versions are deleted unless a kept version or ``CURRENT``
still names them. Dropped versions are listed in ``vacuumed.json`` so a rollback to one is
refused by name instead of failing on a missing file. The current data version is always
among the kept ones: it is the newest.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from app.artifacts import current_version
from app.data.versions import TABLES_DIR, BuildRecord, read_history, table_location
from app.settings import Settings

VACUUMED_FILE = "vacuumed.json"


@dataclass(frozen=True)
class VacuumReport:
    kept_versions: tuple[int, ...]
    dropped_versions: tuple[int, ...]
    removed_files: int
    removed_models: tuple[str, ...]

    def format(self) -> str:
        kept = ", ".join(map(str, self.kept_versions)) or "none"
        dropped = ", ".join(map(str, self.dropped_versions)) or "none"
        models = (
            f"{len(self.removed_models)} models ({', '.join(self.removed_models)})"
            if self.removed_models
            else "no model"
        )
        return (
            f"kept data versions {kept}; dropped {dropped}; removed {self.removed_files} table "
            f"files and {models}"
        )


def vacuumed_versions(versions_dir: Path) -> set[int]:
    """The data versions an earlier vacuum dropped."""
    path = versions_dir / VACUUMED_FILE
    return set(json.loads(path.read_text())) if path.is_file() else set()


def vacuum(settings: Settings, keep: int) -> VacuumReport:
    """Keep the newest ``keep`` data versions (>= 1) and what they need; remove the rest."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1 (the current version), got {keep}")
    versions_dir = settings.versions_dir
    records = [r for r in read_history(versions_dir) if r.data_version is not None]
    numbers = sorted({r.data_version for r in records if r.data_version is not None})
    kept_numbers = set(numbers[-keep:])
    gone = vacuumed_versions(versions_dir)
    kept = [r for r in records if r.data_version in kept_numbers]
    dropped = [r for r in records if r.data_version not in kept_numbers | gone]
    removed_files = sum(
        _vacuum_table(versions_dir, name, _table_versions(kept, name))
        for name in _table_names(versions_dir)
    )
    removed_models = _remove_models(settings, kept, dropped)
    _write_vacuumed(versions_dir, gone | {r.data_version for r in dropped if r.data_version})
    return VacuumReport(
        kept_versions=tuple(sorted(kept_numbers)),
        dropped_versions=tuple(sorted({r.data_version for r in dropped if r.data_version})),
        removed_files=removed_files,
        removed_models=removed_models,
    )


def _table_names(versions_dir: Path) -> list[str]:
    tables = versions_dir / TABLES_DIR
    return sorted(p.name for p in tables.iterdir() if p.is_dir()) if tables.is_dir() else []


def _table_versions(records: list[BuildRecord], name: str) -> list[int]:
    return sorted({r.tables[name] for r in records if name in r.tables})


def _vacuum_table(versions_dir: Path, name: str, keep_versions: list[int]) -> int:
    from deltalake import DeltaTable

    table = DeltaTable(table_location(versions_dir, name))
    removed = table.vacuum(
        retention_hours=0,
        enforce_retention_duration=False,
        dry_run=False,
        keep_versions=keep_versions,
    )
    return len(removed)


def _remove_models(
    settings: Settings, kept: list[BuildRecord], dropped: list[BuildRecord]
) -> tuple[str, ...]:
    """Delete the models only dropped versions name; never one a kept version or CURRENT
    names."""
    needed = {r.model_version for r in kept} | {current_version(settings.model_root)}
    removed = []
    for model in sorted({r.model_version for r in dropped if r.model_version} - needed):
        directory = settings.model_root / model
        if model and directory.is_dir():
            shutil.rmtree(directory)
            removed.append(model)
    return tuple(removed)


def _write_vacuumed(versions_dir: Path, versions: set[int]) -> None:
    staging = versions_dir / f".{VACUUMED_FILE}.tmp"
    staging.write_text(json.dumps(sorted(versions)) + "\n")
    staging.replace(versions_dir / VACUUMED_FILE)
