"""Spark validates an atomic interactions file exactly as the local path does: the same
accepted rows in the same order, the same quarantine line for line, on hand-written hostile
input, on files Spark reads in several blocks, and through ``ingest`` on both datasets of
``conftest.ingested`` (the same fingerprint and quarantine files)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from app.data.atomic import INTERACTION_KEYS, INTERACTIONS_TABLE, parse_header, read_atomic_file
from app.data.ingest import QUARANTINE_DIR, ingest, read_fingerprint
from app.data.interaction_rules import (
    DUPLICATE_INTERACTION,
    INVALID_TIMESTAMP,
    TIMESTAMP_OUT_OF_RANGE,
    UNKNOWN_EVENT_TYPE,
    UNKNOWN_ITEM,
    empty_value,
    invalid_float,
)
from app.data.raw import WRONG_FIELD_COUNT
from app.data.types import DataFormatError
from app.data.validate import ValidatedTable, validate_interactions
from app.spark.text import WHITESPACE
from app.spark.validate import spark_validate_interactions
from tests.spark.conftest import Ingested

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

NOW = int(time.time())
HEADER = "\t".join(
    [
        "user_id:token",
        "item_id:token",
        "timestamp:token",
        "event_type:token",
        "value:float",
        "quantity:float",
        "price:float",
        "basket_id:token",
        "note:token",
    ]
)
CATALOGUE = pd.Index(["i1", "i2", "i3", "sku 17/b"])
T = "1700000000"
# Timestamps as pandas' ISO-8601 reader takes or refuses them, edge by edge.
TIMESTAMP_TEXTS = [
    *["2024-01-02", "2024-1-2", "2024/01/02", "2024.01.02", "2024 01 02", "2024\\01\\02"],
    *["2024-01", "2024-1", "202401", "20240102T030405", "2024-0102", "2024-01-2"],
    *["2024-01-02T03", "2024-01-02T3", "2024-01-02T3:04", "2024-01-02T03:4", "2024-01-02T0304"],
    *["2024-01-02T034", "2024-01-02T03:0405", "2024-01-02T0304:05", "2024-01-02t03:04:05"],
    *["2024-01-02 03:04:05", "2024 01 02 03:04", "2024-01-02  03:04", "2024-01-02T03:04:5"],
    *["2024-01-02T03:04:05Z", "2024-01-02T03:04:05z", "2024-01-02T03:04:05ZZ", "2024-01-02Z"],
    *["2024-01-02T03:04:05+02:00", "2024-01-02T03:04:05+0200", "2024-01-02T03:04:05+2"],
    *["2024-01-02T03:04:05-02:30", "2024-01-02T03:04:05 +02:00", "2024-01-02T03:04:05\x0b+02"],
    *["2024-01-02T03:04:05+02:5", "2024-01-02T03:04:05+023", "2024-01-02T03:04:05+02305"],
    *["2024-01-02T03:04:05+24:00", "2024-01-02T03:04:05+02:60", "2024-01-02T03:04:05+25"],
    *["2024-01-02T03Z", "2024-01-02T03 +01:00", "2024-01-02T03:04 Z", "2024-01-02T03:"],
    *["2024-01-02T03:04:05.", "2024-01-02T03:04:05.Z", "2024-01-02T03:04:05.  +01:00"],
    *["2024-06-30T23:59:59.999999999Z", "2024-06-30T23:59:59.9999999999Z"],
    *["2024-01-02T03:04:05.123456789123456789", "2024-01-02T03:04:05.1234567891234567891"],
    *["2024-02-29", "2023-02-29", "2024-02-30", "2024-13-01", "2024-00-01", "2024-01-00"],
    *["2024-01-02T24:00", "2024-01-02T23:60", "2024-01-02T03:04:60", "-2024-01-02", "+2024-01-02"],
    *["1677-09-21T00:12:44Z", "1677-09-21T00:12:43Z", "2262-04-11T23:47:16", "2262-04-12"],
    *["1677-09-21T00:12:44+01:00", "2262-04-11T23:47:16-01:00"],  # pandas overflows: wraps
    *["1969-12-31T23:59:59.9999999Z", "1970-01-01T00:00:00+00:01", "0000-01-01"],
    *["now", "today", "NaT", "nan", "\u0661\u0662\u0663\u0664-01-02", "1_000", "0x10", "+17e8"],
    *[".5e9", "1e-400", "-1e999", "1700000000500", "-1700000000500"],
]


def row(user: str, item: str = "i1", timestamp: str = T, event: str = "view", **rest: str) -> str:
    values = {"value": "1", "quantity": "1", "price": "2.5", "basket_id": "b1", "note": ""}
    return "\t".join([user, item, timestamp, event, *(values | rest).values()])


HOSTILE_ROWS = [
    row("u1"),
    "",  # blank line: a row of empty fields
    "u2\ti1\t1700000001",  # too few fields
    row("u3") + "\textra\tand more",  # too many: the extras stay in the last field
    "\t" * 8,  # nine empty fields
    row(" u4 ", "\u00a0i1\u00a0"),  # ids stripped, the non-breaking space too
    row(""),
    row("   "),
    row("u5", ""),
    row("u6", timestamp="1700000000500"),  # milliseconds
    row("u7", timestamp="1700000003.75"),
    row("u8", timestamp="2023-11-14T22:13:20Z"),
    row("u9", timestamp="2023-11-14T22:13:20+02:00"),
    row("u10", timestamp="2023-11-14"),
    row("u11", timestamp="yesterday"),
    row("u12", timestamp="-5"),
    row("u13", timestamp="4102444800"),  # 2100
    row("u14", timestamp="1e999"),
    row("u15", timestamp=""),
    row("u16", event=" PURCHASE "),
    row("u17", event="like"),
    row("u18", event="V\u0130EW"),  # Arrow lower-cases the dotted capital I to "i"
    row("u19", event="clic\u212a"),  # the Kelvin sign lower-cases to "k"
    row("u20", value="nan"),
    row("u21", value="1e999"),
    row("u22", value="cheap"),
    row("u23", value=" 2.5 "),
    row("u24", value="1e-400"),
    row("u25", quantity="", price="", basket_id=""),  # unknown, not invalid
    row("u26", quantity="two"),
    row("u27", price="1e999"),
    row("u28", "unknown"),
    row("u29", "sku 17/b"),
    row('"u30"'),  # no quoting: the quotes are part of the id
    row("u1"),  # the first row again
    row("u1", timestamp="1700000000.9"),  # the same second
    row("u16", event="purchase"),  # the same event type
    row("u17", event="like"),  # the same as a rejected row: rejected again, not a duplicate
    row("u31", "i2", quantity="bad"),
    row("u31", "i2"),  # its twin was rejected, so this one is the first
    *[row(f"{c}w{i}{c}", "i2") for i, c in enumerate(WHITESPACE) if c not in "\t\r\n"],
    *[row(f"{c}z{i}", "i2") for i, c in enumerate(["\u200b", "\ufeff", "\u180e"])],
    *[row(f"t{i}", "i3", timestamp=text) for i, text in enumerate(TIMESTAMP_TEXTS)],
]
EVERY_REASON = {
    WRONG_FIELD_COUNT,
    empty_value("user_id"),
    empty_value("item_id"),
    INVALID_TIMESTAMP,
    TIMESTAMP_OUT_OF_RANGE,
    UNKNOWN_EVENT_TYPE,
    invalid_float("value"),
    invalid_float("quantity"),
    invalid_float("price"),
    UNKNOWN_ITEM,
    DUPLICATE_INTERACTION,
}


def write_inter(directory: Path, lines: list[str], endings: tuple[str, ...] = ("\n",)) -> Path:
    """``directory/NAME.inter``, line ``i`` ended by ``endings[i % len(endings)]``."""
    directory.mkdir(parents=True)
    path = directory / f"{directory.name}.inter"
    ended = [line + endings[i % len(endings)] for i, line in enumerate(lines)]
    path.write_bytes("".join(ended).encode())
    return path


def both_engines(
    spark: SparkSession, path: Path, known_items: pd.Index | None
) -> tuple[ValidatedTable, ValidatedTable]:
    raw = read_atomic_file(path, INTERACTIONS_TABLE, INTERACTION_KEYS)
    local = validate_interactions(raw, known_items, NOW)
    fields = parse_header(path, INTERACTION_KEYS)
    scratch = path.parent / "scratch"
    return local, spark_validate_interactions(spark, scratch, path, fields, known_items, NOW)


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python strings (None for missing): the engines' string dtypes differ."""
    text = [name for name in frame if not pd.api.types.is_numeric_dtype(frame[name])]
    converted = frame.astype(dict.fromkeys(text, object))
    return converted.where(converted.notna(), None) if text else converted


def assert_same_validation(local: ValidatedTable, on_spark: ValidatedTable) -> None:
    assert on_spark.name == local.name
    assert on_spark.rows_read == local.rows_read
    assert on_spark.ignored_columns == local.ignored_columns
    assert on_spark.notes == local.notes
    pd.testing.assert_frame_equal(_comparable(on_spark.accepted), _comparable(local.accepted))
    assert on_spark.quarantine.astype(str).to_dict("list") == local.quarantine.astype(str).to_dict(
        "list"
    )


def test_hostile_rows_are_judged_as_locally(spark: SparkSession, tmp_path: Path) -> None:
    path = write_inter(tmp_path / "hostile", [HEADER, *HOSTILE_ROWS], ("\n", "\r\n", "\r"))
    local, on_spark = both_engines(spark, path, CATALOGUE)
    assert set(local.quarantine["reason"]) == EVERY_REASON
    assert len(local.accepted) > len(HOSTILE_ROWS) // 3
    assert_same_validation(local, on_spark)


@pytest.mark.parametrize(
    "lines",
    [
        # No timestamp (a note, every time 0), the value and the event type ("rate") from a
        # rating column, no catalogue.
        ["user_id:token\titem_id:token\trating:float", "u\ta\t4", "u\ta\t5", "v\tb\tx"],
        # The event type from "type", the value from price (which is also kept as the retail
        # price), an ignored column, the ids not first.
        [
            "extra:token\ttype:token\tprice:float\tuser_id:token\titem_id:token\ttimestamp:float",
            "x\tClick\t3\tu\ta\t5",
            "x\tclick\t\tu\tb\t5",
            "x\tseen\t3\tu\tc\t5",
        ],
        ["user_id:token\titem_id:token\ttimestamp:float"],  # a header and nothing else
    ],
    ids=["no-timestamp", "type-and-price", "header-only"],
)
def test_other_layouts_are_judged_as_locally(
    spark: SparkSession, tmp_path: Path, lines: list[str]
) -> None:
    # Spark would read a path with [ ] { } or a backslash as a glob pattern, and find no file.
    path = write_inter(tmp_path / "layout[1]{a,b}\\", lines)
    local, on_spark = both_engines(spark, path, None)
    assert_same_validation(local, on_spark)


@pytest.fixture
def small_blocks(spark: SparkSession) -> Iterator[None]:
    key = "spark.sql.files.maxPartitionBytes"
    before = spark.conf.get(key)
    spark.conf.set(key, str(64 * 1024))
    yield
    spark.conf.set(key, before)


def test_lines_are_numbered_exactly_across_blocks(
    spark: SparkSession, tmp_path: Path, small_blocks: None
) -> None:
    from pyspark.sql import functions as F

    lines = [HEADER.replace("\ttimestamp:token", "\ttimestamp:float")]
    for n in range(1, 15_001):
        if n % 997 == 0:
            lines.append("")
        elif n % 613 == 0:
            lines.append(f"u{n}\ti1")
        elif n % 7 == 0:  # an empty user: quarantined under its line number
            lines.append(row("", timestamp=str(1_700_000_000 + n)))
        else:  # every 1500th row repeats one of 1500 keys: duplicates across blocks
            lines.append(row(f"u{n % 300}", f"i{n % 3 + 1}", str(1_700_000_000 + n % 1500)))
    path = write_inter(tmp_path / "long", lines, ("\n", "\r\n"))
    blocks = spark.read.text(str(path)).select(F.input_file_block_start()).distinct().count()
    assert blocks >= 4
    local, on_spark = both_engines(spark, path, CATALOGUE)
    assert local.quarantine["reason"].value_counts()[DUPLICATE_INTERACTION] > 1000
    assert_same_validation(local, on_spark)


def test_text_that_is_not_utf8_is_refused_as_locally(spark: SparkSession, tmp_path: Path) -> None:
    path = write_inter(tmp_path / "latin", ["user_id:token\titem_id:token", "u\ti"], ("\r\n",))
    path.write_bytes(path.read_bytes() + b"caf\xe9\ti\n")
    with pytest.raises(DataFormatError) as local:
        both_engines(spark, path, None)
    fields = parse_header(path, INTERACTION_KEYS)
    with pytest.raises(DataFormatError) as on_spark:
        spark_validate_interactions(spark, tmp_path / "scratch", path, fields, None, NOW)
    assert str(on_spark.value) == str(local.value) == f"{path}:3: not UTF-8 text"


def _quarantine_files(data_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (data_dir / QUARANTINE_DIR).glob("*.csv")}


def test_ingest_on_spark_writes_the_local_data(
    spark: SparkSession, ingested: Ingested, tmp_path: Path
) -> None:
    report = ingest(
        ingested.source,
        tmp_path / "data",
        interactions_validator=partial(spark_validate_interactions, spark, tmp_path / "scratch"),
    )
    assert report.tables["interactions"].accepted == len(ingested.dataset.interactions) > 0
    assert not list((tmp_path / "scratch").glob("*")), "the rows Spark passed back stay behind"
    assert read_fingerprint(tmp_path / "data") == read_fingerprint(ingested.data_dir)
    assert _quarantine_files(tmp_path / "data") == _quarantine_files(ingested.data_dir)
