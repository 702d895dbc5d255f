"""Read and validate a source: a RecBole atomic directory, or an interactions file (CSV, TSV,
Parquet) with a column mapping.

A batch engine may bring its own ``InteractionsValidator``: it then reads and validates the
interactions file of an atomic directory where it runs, and this process reads only the user
and item tables (small next to the interactions) and the interactions' header. Tabular sources
are validated here either way: their reader infers column types, applies the mapping and
(CSV) reads quoted fields, none of which an engine repeats.
"""

from __future__ import annotations

from pathlib import Path

from app.data.atomic import (
    INTERACTION_KEYS,
    AtomicFiles,
    atomic_files,
    parse_header,
    read_atomic_dir,
)
from app.data.tabular import TabularMapping, read_tabular
from app.data.validate import InteractionsValidator, ValidatedTables, validate_tables, validate_with

# The input's columns per table as read, so a build can tell when the source's schema drifted.
SourceColumns = dict[str, tuple[str, ...]]
TABULAR_VALIDATED_HERE = (
    "interactions validated in the build process: the batch engine validates the "
    "interactions of RecBole atomic directories, not of tabular files"
)


def read_and_validate(
    source: Path,
    mapping: TabularMapping | None,
    now: int,
    interactions_validator: InteractionsValidator | None,
) -> tuple[ValidatedTables, SourceColumns]:
    """The validated tables of ``source`` and the columns each table had."""
    if source.is_dir() and interactions_validator is not None:
        return _validated_by_engine(atomic_files(source), now, interactions_validator)
    tables = (
        read_atomic_dir(source)
        if source.is_dir()
        else read_tabular(source, mapping or TabularMapping())
    )
    validated = validate_tables(tables, now)
    if interactions_validator is not None:
        validated.interactions.notes = (*validated.interactions.notes, TABULAR_VALIDATED_HERE)
    columns = {
        raw.name: tuple(raw.frame.columns)
        for raw in (tables.interactions, tables.users, tables.items)
        if raw is not None
    }
    return validated, columns


def _validated_by_engine(
    files: AtomicFiles, now: int, validator: InteractionsValidator
) -> tuple[ValidatedTables, SourceColumns]:
    fields = parse_header(files.interactions, INTERACTION_KEYS)
    users, items = files.read_users(), files.read_items()
    validated = validate_with(
        users, items, lambda known_items: validator(files.interactions, fields, known_items, now)
    )
    columns = {validated.interactions.name: tuple(fields)} | {
        raw.name: tuple(raw.frame.columns) for raw in (users, items) if raw is not None
    }
    return validated, columns
