from __future__ import annotations

import math
import time

import pandas as pd
import pytest

from app.data.atomic import read_atomic_dir
from app.data.validate import ValidatedTables, parse_timestamps, validate_tables
from tests.data.conftest import BADSHOP, AtomicWriter

NOW = int(time.time())


@pytest.fixture(scope="module")
def badshop() -> ValidatedTables:
    return validate_tables(read_atomic_dir(BADSHOP), now=NOW)


def reasons_by_line(quarantine: pd.DataFrame) -> dict[int, str]:
    return dict(zip(quarantine["line"], quarantine["reason"], strict=True))


def test_each_interaction_rule_quarantines_its_line(badshop: ValidatedTables) -> None:
    assert reasons_by_line(badshop.interactions.quarantine) == {
        5: "unknown item_id",
        6: "duplicate interaction",
        7: "empty user_id",
        8: "invalid float in rating",
        9: "invalid timestamp",
        10: "timestamp out of range",
        11: "timestamp out of range",
        12: "wrong number of fields",
        13: "wrong number of fields",
        14: "invalid float in rating",
        16: "invalid float in rating",
        17: "unknown item_id",  # its item was itself quarantined
    }


def test_good_interactions_survive_standardised(badshop: ValidatedTables) -> None:
    accepted = badshop.interactions.accepted
    assert list(accepted.itertuples(index=False, name=None)) == [
        ("0042", "007", 881250949, "rate", 4.0),
        ("0042", "sku 17/b", 881250950, "rate", 5.0),
        ("u9", "NA", 881250951, "rate", 3.0),
        ("u7", "padded", 881250957, "rate", 2.0),  # ids stripped of surrounding spaces
        ("u7", "007", 1700000000, "rate", 2.5),  # milliseconds became seconds
    ]
    assert badshop.interactions.rows_read == 17


def test_quarantine_keeps_the_raw_fields(badshop: ValidatedTables) -> None:
    quarantine = badshop.interactions.quarantine
    assert list(quarantine.columns) == [
        "line",
        "reason",
        "user_id",
        "item_id",
        "rating",
        "timestamp",
    ]
    row = quarantine[quarantine["line"] == 14].iloc[0]
    assert (row["item_id"], row["rating"]) == (" padded ", "inf")


def test_user_rules(badshop: ValidatedTables) -> None:
    assert badshop.users is not None
    assert reasons_by_line(badshop.users.quarantine) == {
        3: "age out of range",
        4: "invalid age",
        5: "duplicate user_id",
        6: "age out of range",
        11: "invalid age",  # a band upside down
        12: "age out of range",
    }
    users = badshop.users.accepted
    assert list(users["user_id"]) == ["0042", "u6", "u7", "b1", "b2"]
    # The first of the duplicates is kept; an empty age is "missing", not an error; bands of
    # years, as retail data give ages, are kept.
    assert list(users["age"]) == ["33", "", "120", "45-54", "65+"]


def test_item_rules_and_typed_attributes(badshop: ValidatedTables) -> None:
    assert badshop.items is not None
    assert reasons_by_line(badshop.items.quarantine) == {
        5: "duplicate item_id",
        6: "invalid float in price",
        7: "invalid float in tags",
        8: "wrong number of fields",
        9: "empty item_id",
    }
    items = badshop.items.accepted.set_index("item_id")
    assert list(items.index) == ["007", "sku 17/b", "NA", "padded"]
    assert list(items.loc["007", "title"]) == ["Licence", "To", "Kill"]
    assert list(items.loc["007", "tags"]) == [1.0, 2.5]
    assert list(items.loc["sku 17/b", "tags"]) == []
    assert items.loc["NA", "price"] == 3.5


def test_event_types_from_column_lowercased_and_checked(write_atomic: AtomicWriter) -> None:
    folder = write_atomic(
        inter=[
            "user_id:token\titem_id:token\tevent_type:token\tprice:float\ttimestamp:float",
            "u\ta\t VIEW \t1\t100",
            "u\ta\tPurchase\t19.5\t101",
            "u\ta\tlike\t1\t102",
            "u\tb\tadd_to_cart\t7\t103",
        ]
    )
    result = validate_tables(read_atomic_dir(folder), now=NOW).interactions
    assert list(result.accepted["event_type"]) == ["view", "purchase", "add_to_cart"]
    assert list(result.accepted["value"]) == [1.0, 19.5, 7.0]  # price fills value
    assert reasons_by_line(result.quarantine) == {4: "unknown event_type"}


def test_default_event_type_is_interaction_without_rating(write_atomic: AtomicWriter) -> None:
    folder = write_atomic(inter=["user_id:token\titem_id:token\ttimestamp:float", "u\ta\t5"])
    accepted = validate_tables(read_atomic_dir(folder), now=NOW).interactions.accepted
    assert list(accepted[["event_type", "value"]].itertuples(index=False, name=None)) == [
        ("interaction", 1.0)
    ]


def test_missing_timestamp_column_is_noted(write_atomic: AtomicWriter) -> None:
    folder = write_atomic(inter=["user_id:token\titem_id:token\trating:float", "u\ta\t4"])
    result = validate_tables(read_atomic_dir(folder), now=NOW).interactions
    assert list(result.accepted["timestamp"]) == [0]
    assert "no timestamp column" in result.notes[0]


def test_timestamp_bounds_are_checked_against_now(write_atomic: AtomicWriter) -> None:
    folder = write_atomic(
        inter=[
            "user_id:token\titem_id:token\ttimestamp:float",
            f"u\ta\t{NOW + 3600}",
            f"u\tb\t{NOW + 2 * 86_400}",
        ]
    )
    result = validate_tables(read_atomic_dir(folder), now=NOW).interactions
    assert list(result.accepted["item_id"]) == ["a"]
    assert reasons_by_line(result.quarantine) == {3: "timestamp out of range"}


def test_parse_timestamps_accepts_seconds_milliseconds_and_iso() -> None:
    parsed = parse_timestamps(
        pd.Series(["1700000000", "1700000000500", "2023-11-14T22:13:20Z", "2023-11-14", "soon", ""])
    )
    assert list(parsed[:4]) == [1700000000.0, 1700000000.5, 1700000000.0, 1699920000.0]
    assert math.isnan(parsed[4])
    assert math.isnan(parsed[5])


def test_blank_line_is_reported_not_skipped(write_atomic: AtomicWriter) -> None:
    folder = write_atomic(inter=["user_id:token\titem_id:token\ttimestamp:float", "", "u\ta\t5"])
    result = validate_tables(read_atomic_dir(folder), now=NOW).interactions
    assert list(result.accepted["item_id"]) == ["a"]
    assert reasons_by_line(result.quarantine) == {2: "empty user_id"}


def test_each_iso_timestamp_is_read_at_its_own_offset() -> None:
    # pandas alone read the time without an offset at the +02:00 of the string before it.
    parsed = parse_timestamps(
        pd.Series(["2024-01-02T03:04:05+02:00", "2024-01-02T03:04:05", "2024-01-02 03"])
    )
    assert list(parsed) == [1704157445.0, 1704164645.0, 1704164400.0]


def test_clock_words_are_not_timestamps() -> None:
    # pandas reads "now" and "today" as the clock: a row whose time changes with every ingest.
    assert all(math.isnan(seconds) for seconds in parse_timestamps(pd.Series(["now", "today"])))


def test_iso_timestamps_are_read_at_their_own_offset_in_long_columns() -> None:
    # From 50 strings on, pandas parses each distinct string once, in an order of its own.
    texts = ["2024-01-02T03:04:05+02:00", "2024-01-02T03:04:05.5"] * 30
    assert set(parse_timestamps(pd.Series(texts))[1::2]) == {1704164645.5}
