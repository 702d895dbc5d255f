"""The lines of a text file on Spark, each with its physical line number, and the file never
collected.

Spark reads a file in blocks, several at once. Within a block the rows come in file order and
``monotonically_increasing_id`` counts them up without a gap, so one pass that counts the rows
of each block is enough: the driver turns those counts (one row per block) into each block's
first line, and a broadcast join numbers every row. Lines end at ``\\n``, ``\\r\\n`` or a lone
``\\r``, as in the local reader (Arrow's CSV reader); an empty line is a line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from app.data.types import DataFormatError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

TEXT = "value"  # the column spark.read.text names
LINE = "line"
_BLOCK, _ID, _OFFSET = "block", "row_id", "line_offset"
# Spark reads a path with any of these as a glob pattern; escaped, they are the file's name.
_GLOB_CHARACTERS = re.compile(r"([\\*?\[\]{}])")


@contextmanager
def numbered_lines(spark: SparkSession, path: Path) -> Iterator[tuple[DataFrame, int]]:
    """The lines of ``path`` as (``value``, ``line``, 1-based) and how many there are; the
    lines stay cached on the executors until the block ends. Raises ``DataFormatError`` naming
    the first line that is not UTF-8, as the local reader does."""
    from pyspark.sql import functions as F

    # Cached so that every later pass sees the rows the numbering saw, in the same blocks.
    lines = (
        spark.read.text(_GLOB_CHARACTERS.sub(r"\\\1", str(path)))
        .select(
            TEXT,
            F.input_file_block_start().alias(_BLOCK),
            F.monotonically_increasing_id().alias(_ID),
        )
        .cache()
    )
    try:
        blocks = (
            lines.groupBy(_BLOCK)
            .agg(
                F.count(F.lit(1)).alias("rows"),
                F.min(_ID).alias("first_id"),
                F.min(F.when(~F.is_valid_utf8(TEXT), F.col(_ID))).alias("first_bad_id"),
            )
            .orderBy(_BLOCK)
            .collect()
        )
        offsets, total = _line_offsets(blocks)
        _refuse_non_utf8(path, blocks, offsets)
        first_lines = spark.createDataFrame(offsets, schema=f"{_BLOCK} long, {_OFFSET} long")
        numbered = lines.join(F.broadcast(first_lines), _BLOCK).select(
            TEXT, (F.col(_ID) + F.col(_OFFSET)).alias(LINE)
        )
        yield numbered, total
    finally:
        lines.unpersist()


def _line_offsets(blocks: list[Row]) -> tuple[list[tuple[int, int]], int]:
    """Per block, what turns a row id into its line: the block's first line minus its first
    id; and the number of lines."""
    offsets: list[tuple[int, int]] = []
    first_line = 1
    for block in blocks:
        offsets.append((block[_BLOCK], first_line - block["first_id"]))
        first_line += block["rows"]
    return offsets, first_line - 1


def _refuse_non_utf8(path: Path, blocks: list[Row], offsets: list[tuple[int, int]]) -> None:
    bad_lines = [
        block["first_bad_id"] + offset
        for block, (_, offset) in zip(blocks, offsets, strict=True)
        if block["first_bad_id"] is not None
    ]
    if bad_lines:
        raise DataFormatError(f"{path}:{min(bad_lines)}: not UTF-8 text")
