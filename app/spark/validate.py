"""Validation and deduplication of an atomic interactions file on Spark.

The same rules, in the same order, with the same reasons as
``app.data.validate.validate_interactions`` (``app.data.interaction_rules`` holds what they
share), and the same ``ValidatedTable``: accepted rows in line order, the quarantine with each
rejected row's raw fields. Executors read and judge the file; one row per line comes back to
the driver (the standard columns of an accepted row, the raw fields of a rejected one), where
it is put in line order rather than by a distributed sort. They come back as Parquet the
executors write under a scratch directory, not as a collected result: at tens of millions of
rows a collect overruns the driver's result size limit and holds every row twice in its JVM.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.data.atomic import INTERACTIONS_TABLE
from app.data.interaction_rules import (
    DUPLICATE_INTERACTION,
    DUPLICATE_KEY,
    INVALID_TIMESTAMP,
    SECONDS_PER_DAY,
    TIMESTAMP_OUT_OF_RANGE,
    UNKNOWN_EVENT_TYPE,
    UNKNOWN_ITEM,
    InteractionColumns,
    empty_value,
    interaction_columns,
    invalid_float,
    missing_timestamp_note,
)
from app.data.raw import ARROW_STRINGS, LINE, REASON, WRONG_FIELD_COUNT
from app.data.types import EVENT_TYPE, EVENT_TYPES, ITEM_ID, TIMESTAMP, USER_ID, VALUE, FieldType
from app.data.validate import ValidatedTable
from app.spark.lines import TEXT, numbered_lines
from app.spark.text import decimal_number, is_finite, lower, strip
from app.spark.timestamps import timestamp_seconds

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

DELIMITER = "\t"
_MALFORMED, _SECONDS, _KNOWN = "malformed", "seconds", "known_item"


def spark_validate_interactions(
    spark: SparkSession,
    scratch_dir: Path,
    path: Path,
    fields: dict[str, FieldType],
    known_items: pd.Index | None,
    now: int,
) -> ValidatedTable:
    """Validate the atomic interactions file ``path`` (header ``fields``) on ``spark``, its
    rows passed back through ``scratch_dir``; with both bound, an ``InteractionsValidator``."""
    from pyspark.sql import functions as F

    # Raw fields go by position: a header may name a field "line", "reason" or "value".
    raw = {name: f"raw_{position}" for position, name in enumerate(fields)}
    columns = interaction_columns(list(fields))
    judged_dir = scratch_dir / f"validated-{uuid.uuid4().hex}"
    with numbered_lines(spark, path) as (lines, line_count):
        rows = _fields(lines.where(F.col(LINE) > 1), list(raw.values()))  # line 1: the header
        parsed = rows.select("*", *_standard_columns(raw, columns))
        if known_items is not None:
            parsed = _join_known_items(spark, parsed, known_items)
        failure = _first_failure(raw, columns, now, has_catalogue=known_items is not None)
        judged = parsed.withColumn(REASON, failure)
        accepted = F.col(REASON).isNull()
        (
            _deduplicated(judged.withColumn(TIMESTAMP, F.when(accepted, F.floor(_SECONDS))))
            .select(
                LINE,
                REASON,
                *[F.when(~accepted, F.col(column)).alias(column) for column in raw.values()],
                *[F.when(accepted, F.col(name)).alias(name) for name in _accepted_names(columns)],
            )
            .write.parquet(str(judged_dir))
        )
    try:
        table = pq.read_table(judged_dir)
    finally:
        shutil.rmtree(judged_dir, ignore_errors=True)
    table = table.take(pc.sort_indices(table[LINE]))
    rejected = pc.is_valid(table[REASON])
    return ValidatedTable(
        name=INTERACTIONS_TABLE,
        accepted=table.filter(pc.invert(rejected))
        .select(_accepted_names(columns))
        .to_pandas(types_mapper=ARROW_STRINGS.get),
        quarantine=table.filter(rejected)
        .select([LINE, REASON, *raw.values()])
        .rename_columns([LINE, REASON, *raw])
        .to_pandas(),
        rows_read=line_count - 1,
        ignored_columns=columns.ignored,
        notes=() if columns.timestamp is not None else (missing_timestamp_note(path),),
    )


def _accepted_names(columns: InteractionColumns) -> list[str]:
    return [USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE, VALUE, *columns.retail]


def _fields(lines: DataFrame, raw_names: list[str]) -> DataFrame:
    """Each line's fields as the local reader lays them out: filled left to right, the extra
    fields left joined in the last. A non-empty line with another field count is malformed;
    an empty line is a row of empty fields."""
    from pyspark.sql import functions as F

    fields = F.split(TEXT, DELIMITER, len(raw_names))
    field_count = F.size(F.split(TEXT, DELIMITER, -1))
    return lines.select(
        LINE,
        ((F.col(TEXT) != "") & (field_count != len(raw_names))).alias(_MALFORMED),
        *[F.coalesce(F.get(fields, i), F.lit("")).alias(name) for i, name in enumerate(raw_names)],
    )


def _standard_columns(raw: dict[str, str], columns: InteractionColumns) -> list[Column]:
    """The standard columns, parsed but not judged: null where a value does not parse."""
    from pyspark.sql import functions as F

    seconds = F.lit(0.0)
    if columns.timestamp is not None:
        seconds = timestamp_seconds(F.col(raw[columns.timestamp]))
    events = F.lit(columns.default_event)
    if columns.event is not None:
        events = lower(strip(F.col(raw[columns.event])))
    values = F.lit(1.0)
    if columns.value is not None:
        values = decimal_number(F.col(raw[columns.value]))
    retail = []
    for name, kind in columns.retail.items():
        text = strip(F.col(raw[name]))
        retail.append(
            (F.when(text != "", text) if kind == "token" else decimal_number(text)).alias(name)
        )
    return [
        strip(F.col(raw[USER_ID])).alias(USER_ID),
        strip(F.col(raw[ITEM_ID])).alias(ITEM_ID),
        seconds.alias(_SECONDS),
        events.alias(EVENT_TYPE),
        values.alias(VALUE),
        *retail,
    ]


def _first_failure(
    raw: dict[str, str], columns: InteractionColumns, now: int, *, has_catalogue: bool
) -> Column:
    """The reason of the first rule a row fails, in the local rule order; null if none."""
    from pyspark.sql import functions as F

    rules: list[tuple[Column, str]] = [
        (F.col(_MALFORMED), WRONG_FIELD_COUNT),
        (F.col(USER_ID) == "", empty_value(USER_ID)),
        (F.col(ITEM_ID) == "", empty_value(ITEM_ID)),
    ]
    if columns.timestamp is not None:
        seconds = F.col(_SECONDS)
        rules += [
            (seconds.isNull(), INVALID_TIMESTAMP),
            ((seconds < 0) | (seconds > now + SECONDS_PER_DAY), TIMESTAMP_OUT_OF_RANGE),
        ]
    if columns.event is not None:
        rules.append((~F.col(EVENT_TYPE).isin(*EVENT_TYPES), UNKNOWN_EVENT_TYPE))
    if columns.value is not None:
        rules.append((~is_finite(F.col(VALUE)), invalid_float(columns.value)))
    for name, kind in columns.retail.items():
        if kind != "token":  # an empty quantity or price is unknown, not invalid
            written = strip(F.col(raw[name])) != ""
            rules.append((written & ~is_finite(F.col(name)), invalid_float(name)))
    if has_catalogue:
        rules.append((F.col(_KNOWN).isNull(), UNKNOWN_ITEM))
    first, reason = rules[0]
    failure = F.when(first, reason)
    for condition, reason in rules[1:]:
        failure = failure.when(condition, reason)
    return failure


def _join_known_items(spark: SparkSession, parsed: DataFrame, known_items: pd.Index) -> DataFrame:
    """``parsed`` with ``known_item``, null where the item is not in the catalogue."""
    from pyspark.sql import functions as F

    known = spark.createDataFrame(
        pd.DataFrame({_KNOWN: known_items.unique().astype(object)}), schema=f"{_KNOWN} string"
    )
    return parsed.join(F.broadcast(known), parsed[ITEM_ID] == known[_KNOWN], "left")


def _deduplicated(judged: DataFrame) -> DataFrame:
    """Accepted rows that repeat an earlier accepted row's ``DUPLICATE_KEY`` are duplicates.
    Rejected rows are each a group of their own: grouped on their null keys they would all
    land in one window partition."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    accepted = F.col(REASON).isNull()
    group = Window.partitionBy(
        *[F.when(accepted, F.col(key)) for key in DUPLICATE_KEY], F.when(~accepted, F.col(LINE))
    )
    repeated = accepted & (F.col(LINE) != F.min(LINE).over(group))
    return judged.withColumn(
        REASON, F.when(repeated, DUPLICATE_INTERACTION).otherwise(F.col(REASON))
    )
