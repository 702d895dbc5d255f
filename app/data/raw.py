"""Raw tables as read from disk, before validation: every value a string, every row its line.

Both readers (RecBole atomic files and CSV/Parquet) produce a ``RawTable`` so that one
validation path serves every input format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from app.data.types import DataFormatError, FieldType

LINE = "line"
REASON = "reason"
WRONG_FIELD_COUNT = "wrong number of fields"
# Raw strings stay in Arrow memory: pandas string methods on them run in C++, not per row.
ARROW_STRINGS = {pa.string(): pd.StringDtype("pyarrow")}


@dataclass
class RawTable:
    """One input table. ``frame`` holds the raw strings of the well-formed rows; ``lines`` their
    1-based line (or row) numbers; ``malformed`` rows that could not be split into fields,
    already in quarantine layout (``line``, ``reason``, then one column per field)."""

    name: str
    path: Path
    frame: pd.DataFrame
    lines: np.ndarray
    fields: dict[str, FieldType]
    malformed: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def rows_read(self) -> int:
        return len(self.frame) + len(self.malformed)


def empty_quarantine(columns: list[str]) -> pd.DataFrame:
    """A quarantine frame with no rows: ``line``, ``reason``, then the raw field columns."""
    return pd.DataFrame(
        {LINE: pd.Series(dtype="int64"), REASON: pd.Series(dtype=object)}
        | {name: pd.Series(dtype=object) for name in columns}
    )


def _split_malformed(text: str, delimiter: str, n_fields: int) -> list[str]:
    # Fill the field columns left to right; extra fields stay (joined) in the last column so
    # the quarantine file keeps every byte of the rejected line.
    parts = text.split(delimiter)
    if len(parts) > n_fields:
        parts = [*parts[: n_fields - 1], delimiter.join(parts[n_fields - 1 :])]
    return parts + [""] * (n_fields - len(parts))


def read_delimited(
    path: Path,
    *,
    table: str,
    names: list[str],
    fields: dict[str, FieldType],
    delimiter: str,
    quoted: bool,
) -> RawTable:
    """Read a delimited text file whose first line is a header (skipped) into a ``RawTable``.

    Rows with the wrong number of fields are kept aside as malformed, with their line number.
    Empty lines are read as rows of empty strings so that validation reports them too.
    """
    bad_rows: list[tuple[int, str]] = []

    def on_invalid_row(row: pa_csv.InvalidRow) -> str:
        bad_rows.append((int(row.number or 0), row.text))
        return "skip"

    try:
        arrow_table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(
                use_threads=False,  # physical line numbers are only known single-threaded
                skip_rows=1,
                column_names=names,
                block_size=1 << 24,
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                quote_char='"' if quoted else False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid_row,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        raise DataFormatError(_describe_arrow_error(path, error)) from error

    frame = arrow_table.to_pandas(types_mapper=ARROW_STRINGS.get)
    bad_lines = np.array([line for line, _ in bad_rows], dtype=np.int64)
    all_lines = np.arange(2, 2 + len(frame) + len(bad_rows), dtype=np.int64)
    malformed = empty_quarantine(names)
    if bad_rows:
        records = [
            [line, WRONG_FIELD_COUNT, *_split_malformed(text, delimiter, len(names))]
            for line, text in bad_rows
        ]
        malformed = pd.DataFrame(records, columns=list(malformed.columns))
    return RawTable(
        name=table,
        path=path,
        frame=frame,
        lines=np.setdiff1d(all_lines, bad_lines, assume_unique=True),
        fields=fields,
        malformed=malformed,
    )


def _describe_arrow_error(path: Path, error: pa.ArrowInvalid) -> str:
    if "UTF8" in str(error):
        line = first_non_utf8_line(path.read_bytes())
        return f"{path}:{line}: not UTF-8 text"
    return f"{path}: cannot parse: {error}"


def first_non_utf8_line(data: bytes) -> int | None:
    """1-based line of the first byte sequence that is not valid UTF-8, or None if all is."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return data.count(b"\n", 0, error.start) + 1
    return None
