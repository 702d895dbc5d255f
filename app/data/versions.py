"""Versioned tables (Delta Lake) and the build history that names their versions.

Every committed build writes each of its tables as a new version of a Delta table under
``<versions_dir>/tables/<name>``; an earlier version stays readable (time travel) until it is
vacuumed. ``history.jsonl`` holds one ``BuildRecord`` a line: which table versions make up each
data version, the model trained on it, row counts and the outcome, refused builds included.
The Parquet files that Feast, training and serving read are exports of one data version.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Literal

import pyarrow.parquet as pq
from pydantic import BaseModel, Field

TABLES_DIR = "tables"
HISTORY_FILE = "history.jsonl"

Outcome = Literal["published", "refused", "failed", "rolled back", "segments refreshed"]


class BuildRecord(BaseModel):
    """One line of the history: a build (or rollback, or segment refresh) and what it left."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    outcome: Outcome
    message: str = ""
    data_version: int | None = Field(
        None, description="The data version this run made current; None when it changed nothing."
    )
    tables: dict[str, int] = Field(
        default_factory=dict, description="Delta table name -> the version of it in use."
    )
    rows: dict[str, int] = Field(default_factory=dict)
    model_version: str | None = None
    source: str | None = None
    source_columns: dict[str, list[str]] = Field(
        default_factory=dict, description="Input columns of each table, to detect schema drift."
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        description="Small side files of the data version (relative path -> text), restored "
        "with its tables.",
    )
    quarantine_dir: str | None = None


def read_history(versions_dir: Path) -> list[BuildRecord]:
    """Every record, oldest first (empty before the first build)."""
    path = versions_dir / HISTORY_FILE
    if not path.is_file():
        return []
    return [
        BuildRecord.model_validate_json(line)
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def current_record(versions_dir: Path) -> BuildRecord | None:
    """The record of the data version in use: the last one that made a version current."""
    made_current = [r for r in read_history(versions_dir) if r.data_version is not None]
    return made_current[-1] if made_current else None


def next_data_version(versions_dir: Path) -> int:
    numbers = [r.data_version for r in read_history(versions_dir) if r.data_version is not None]
    return max(numbers, default=0) + 1


def append_record(versions_dir: Path, record: BuildRecord) -> None:
    """Append ``record`` durably: the line is on disk before the caller reports success."""
    versions_dir.mkdir(parents=True, exist_ok=True)
    with (versions_dir / HISTORY_FILE).open("a") as history:
        history.write(record.model_dump_json() + "\n")
        history.flush()
        os.fsync(history.fileno())


def write_versions(versions_dir: Path, parquet_files: dict[str, Path]) -> dict[str, int]:
    """Write each Parquet file as the next version of the Delta table of its name; return the
    versions written. The schema may change between versions (it is recorded with each one)."""
    from deltalake import write_deltalake

    written: dict[str, int] = {}
    for name, path in parquet_files.items():
        location = table_location(versions_dir, name)
        write_deltalake(location, pq.read_table(path), mode="overwrite", schema_mode="overwrite")
        written[name] = _latest_version(location)
    return written


def export_versions(versions_dir: Path, tables: dict[str, int], targets: dict[str, Path]) -> None:
    """Write version ``tables[name]`` of each table to the Parquet file ``targets[name]``."""
    from deltalake import DeltaTable

    for name, target in targets.items():
        version = tables[name]
        table = DeltaTable(table_location(versions_dir, name), version=version).to_pyarrow_table()
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)


def table_location(versions_dir: Path, name: str) -> str:
    return str(versions_dir / TABLES_DIR / name)


def _latest_version(location: str) -> int:
    from deltalake import DeltaTable

    return int(DeltaTable(location).version())


def side_files(directories: dict[str, Path], names: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """The text of the small files ``names[prefix]`` found in ``directories[prefix]``, keyed
    ``prefix/name`` as ``BuildRecord.files`` holds them."""
    found: dict[str, str] = {}
    for prefix, directory in directories.items():
        for name in names.get(prefix, ()):
            path = directory / name
            if path.is_file():
                found[f"{prefix}/{name}"] = path.read_text()
    return found


def restore_side_files(files: dict[str, str], directories: dict[str, Path]) -> None:
    """Write back what ``side_files`` collected into ``directories`` (by prefix)."""
    for key, text in files.items():
        prefix, name = key.split("/", 1)
        if prefix in directories:
            (directories[prefix] / name).write_text(text)
