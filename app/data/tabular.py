"""Reader for CSV/TSV/Parquet tables whose columns are renamed by a mapping.

The mapping goes canonical name -> source column, e.g. ``{"user_id": "customer",
"item_id": "sku", "timestamp": "ts"}``, and applies to all three files. Values are turned into
strings here, so validation is the same as for RecBole atomic files. CSV/TSV ``line`` numbers
are physical lines (header is line 1); Parquet ``line`` numbers are 1-based row numbers.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.data.atomic import INTERACTIONS_TABLE, ITEMS_TABLE, USERS_TABLE, RawTables
from app.data.raw import (
    ARROW_STRINGS,
    RawTable,
    empty_quarantine,
    first_non_utf8_line,
    read_delimited,
)
from app.data.types import ITEM_ID, USER_ID, DataFormatError, FieldType

DELIMITERS = {".csv": ",", ".tsv": "\t"}
# A number written with a leading zero ("02134") is an identifier-like token, not a float.
_LEADING_ZERO = re.compile(r"^[+-]?0\d")


@dataclass(frozen=True)
class TabularMapping:
    """How to read tabular input: canonical -> source column names, the optional user and item
    files, and field types for attribute columns that should not be inferred."""

    columns: dict[str, str] = field(default_factory=dict)
    users: Path | None = None
    items: Path | None = None
    field_types: dict[str, FieldType] = field(default_factory=dict)


def parse_columns(text: str) -> dict[str, str]:
    """Parse a JSON column mapping such as ``{"user_id": "customer"}``; ValueError if invalid."""
    try:
        columns = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"column mapping is not valid JSON: {error}") from None
    if not isinstance(columns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in columns.items()
    ):
        raise ValueError('column mapping must be a JSON object of strings, {"user_id": "col"}')
    return columns


def read_tabular(interactions: Path, mapping: TabularMapping) -> RawTables:
    """Read the interactions file and the mapping's user/item files, renamed to canonical names."""
    renames = {source: canonical for canonical, source in mapping.columns.items()}

    def read(path: Path | None, table: str) -> RawTable | None:
        return None if path is None else _read_renamed(path, table, renames, mapping)

    tables = RawTables(
        interactions=_read_renamed(interactions, INTERACTIONS_TABLE, renames, mapping),
        users=read(mapping.users, USERS_TABLE),
        items=read(mapping.items, ITEMS_TABLE),
    )
    _check_columns(tables, mapping)
    return tables


def _check_columns(tables: RawTables, mapping: TabularMapping) -> None:
    required = [
        (table, names)
        for table, names in (
            (tables.interactions, (USER_ID, ITEM_ID)),
            (tables.users, (USER_ID,)),
            (tables.items, (ITEM_ID,)),
        )
        if table is not None
    ]
    present = {name for table, _ in required for name in table.fields}
    unmatched = [c for c in mapping.columns if c not in present]
    if unmatched:
        sources = ", ".join(f"{mapping.columns[c]!r} (for {c})" for c in unmatched)
        raise DataFormatError(
            f"{tables.interactions.path}: column mapping names {sources}, found in no file"
        )
    for table, names in required:
        missing = [name for name in names if name not in table.fields]
        if missing:
            raise DataFormatError(
                f"{table.path}:1: no column for {', '.join(missing)}; map it with "
                f'{{"{missing[0]}": "<column>"}}'
            )


def _read_renamed(
    path: Path, table: str, renames: dict[str, str], mapping: TabularMapping
) -> RawTable:
    raw = _read_parquet(path, table) if path.suffix == ".parquet" else _read_text(path, table)
    raw.frame = raw.frame.rename(columns=renames)
    raw.malformed = raw.malformed.rename(columns=renames)
    raw.fields = {renames.get(name, name): kind for name, kind in raw.fields.items()}
    raw.fields.update({k: v for k, v in mapping.field_types.items() if k in raw.fields})
    return raw


def _read_text(path: Path, table: str) -> RawTable:
    delimiter = DELIMITERS.get(path.suffix.lower())
    if delimiter is None:
        raise DataFormatError(f"{path}: unsupported file type (use .csv, .tsv or .parquet)")
    with path.open("rb") as handle:
        raw_header = handle.readline()
    if first_non_utf8_line(raw_header) is not None:
        raise DataFormatError(f"{path}:1: not UTF-8 text")
    names = next(
        csv.reader([raw_header.decode("utf-8").removeprefix("\ufeff")], delimiter=delimiter), []
    )
    names = [name.strip() for name in names]
    if not names or not any(names):
        raise DataFormatError(f"{path}:1: empty file or empty header line")
    if len(set(names)) != len(names):
        raise DataFormatError(f"{path}:1: header has a repeated column name")
    provisional = dict.fromkeys(names, FieldType.TOKEN)
    raw = read_delimited(
        path, table=table, names=names, fields=provisional, delimiter=delimiter, quoted=True
    )
    raw.fields = {name: _infer_text_type(raw.frame[name]) for name in names}
    return raw


def _infer_text_type(values: pd.Series) -> FieldType:
    present = values[values.str.strip() != ""]
    if present.empty or present.str.match(_LEADING_ZERO).any():
        return FieldType.TOKEN
    numbers = pd.to_numeric(present, errors="coerce").to_numpy(dtype=np.float64)
    return FieldType.FLOAT if np.isfinite(numbers).all() else FieldType.TOKEN


def _read_parquet(path: Path, table: str) -> RawTable:
    try:
        arrow_table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataFormatError(f"{path}: cannot read Parquet: {error}") from error
    columns = {name: _as_strings(arrow_table.column(name)) for name in arrow_table.column_names}
    fields = {name: _arrow_field_type(arrow_table.schema.field(name).type) for name in columns}
    frame = pa.table(columns).to_pandas(types_mapper=ARROW_STRINGS.get)
    return RawTable(
        name=table,
        path=path,
        frame=frame,
        lines=np.arange(1, len(frame) + 1, dtype=np.int64),
        fields=fields,
        malformed=empty_quarantine(list(columns)),
    )


def _arrow_field_type(arrow_type: pa.DataType) -> FieldType:
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        value_type = arrow_type.value_type
        numeric = pa.types.is_floating(value_type) or pa.types.is_integer(value_type)
        return FieldType.FLOAT_SEQ if numeric else FieldType.TOKEN_SEQ
    if pa.types.is_floating(arrow_type) or pa.types.is_integer(arrow_type):
        return FieldType.FLOAT
    return FieldType.TOKEN


def _as_strings(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        # Datetimes become Unix seconds, the same text a numeric timestamp column would give.
        seconds = pc.cast(
            pc.cast(column, pa.timestamp("s", tz=getattr(kind, "tz", None))), pa.int64()
        )
        column = pc.cast(seconds, pa.string())
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        column = pc.binary_join(pc.cast(column, pa.list_(pa.string())), " ")
    else:
        column = pc.cast(column, pa.string())
    return pc.fill_null(column, "")
