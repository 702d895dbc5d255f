"""Row validation and standardisation, vectorised over whole columns.

Each rule rejects rows with one fixed reason string; a row failing several rules carries the
first reason in rule order. Rejected rows keep their raw fields and line number for the
quarantine file, so nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from app.data.age import AGE_FIELD, InvalidAge, parse_age
from app.data.atomic import RawTables
from app.data.interaction_rules import (
    DECIMAL_NUMBER,
    DUPLICATE_INTERACTION,
    DUPLICATE_KEY,
    INVALID_TIMESTAMP,
    MILLISECONDS_THRESHOLD,
    SECONDS_PER_DAY,
    TIMESTAMP_OUT_OF_RANGE,
    UNKNOWN_EVENT_TYPE,
    UNKNOWN_ITEM,
    empty_value,
    interaction_columns,
    invalid_float,
    missing_timestamp_note,
)
from app.data.raw import LINE, REASON, RawTable
from app.data.types import EVENT_TYPE, EVENT_TYPES, ITEM_ID, TIMESTAMP, USER_ID, VALUE, FieldType

# pandas reads these as the clock at parse time: an event time that changed with every ingest.
CLOCK_WORDS = ("now", "today")
# pandas 2.3 reads an ISO time without a UTC offset at the offset of the string parsed before
# it (after "+02:00", "2024-01-02T10:00" was 08:00 UTC); a date-only string resets that, put
# before every string, and parsed there only without to_datetime's cache of distinct strings.
OFFSET_RESET = "1970-01-01"
EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass
class ValidatedTable:
    """Accepted rows in canonical form plus the quarantine (``line``, ``reason``, raw fields)."""

    name: str
    accepted: pd.DataFrame
    quarantine: pd.DataFrame
    rows_read: int
    fields: dict[str, FieldType] = field(default_factory=dict)
    ignored_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class ValidatedTables:
    interactions: ValidatedTable
    users: ValidatedTable | None
    items: ValidatedTable | None


# How a batch engine validates an interactions file in its own place, with the same rules and
# result as ``validate_interactions``: (file, its header's fields, accepted item ids, now).
InteractionsValidator = Callable[[Path, dict[str, FieldType], pd.Index | None, int], ValidatedTable]


class _Verdicts:
    """The first failed rule per row; rows with no reason are accepted."""

    def __init__(self, n_rows: int) -> None:
        self.ok = np.ones(n_rows, dtype=bool)
        self.reasons = np.full(n_rows, "", dtype=object)

    def reject(self, failed: np.ndarray | pd.Series, reason: str) -> None:
        failed_now = self.ok & np.asarray(failed, dtype=bool)
        self.reasons[failed_now] = reason
        self.ok &= ~failed_now


def validate_tables(tables: RawTables, now: int) -> ValidatedTables:
    """Validate users and items, then interactions against the accepted item ids."""
    return validate_with(
        tables.users,
        tables.items,
        lambda known_items: validate_interactions(tables.interactions, known_items, now),
    )


def validate_with(
    users: RawTable | None,
    items: RawTable | None,
    interactions: Callable[[pd.Index | None], ValidatedTable],
) -> ValidatedTables:
    """Validate users and items here, then interactions by ``interactions``, which is given
    the accepted item ids (None without an item table)."""
    valid_items = validate_attributes(items, ITEM_ID) if items else None
    valid_users = validate_attributes(users, USER_ID) if users else None
    known_items = pd.Index(valid_items.accepted[ITEM_ID]) if valid_items is not None else None
    return ValidatedTables(
        interactions=interactions(known_items), users=valid_users, items=valid_items
    )


def validate_interactions(raw: RawTable, known_items: pd.Index | None, now: int) -> ValidatedTable:
    """Standardise interactions to ``INTERACTION_COLUMNS``; ``now`` bounds timestamps."""
    frame = raw.frame
    columns = interaction_columns(list(raw.fields))
    notes: list[str] = []
    verdicts = _Verdicts(len(frame))
    users = frame[USER_ID].str.strip()
    items = frame[ITEM_ID].str.strip()
    verdicts.reject(users == "", empty_value(USER_ID))
    verdicts.reject(items == "", empty_value(ITEM_ID))

    if columns.timestamp is not None:
        seconds = parse_timestamps(frame[columns.timestamp])
        verdicts.reject(np.isnan(seconds), INVALID_TIMESTAMP)
        with np.errstate(invalid="ignore"):
            verdicts.reject(
                (seconds < 0) | (seconds > now + SECONDS_PER_DAY), TIMESTAMP_OUT_OF_RANGE
            )
    else:
        seconds = np.zeros(len(frame))
        notes.append(missing_timestamp_note(raw.path))

    if columns.event is not None:
        events = frame[columns.event].str.strip().str.lower()
        verdicts.reject(~events.isin(EVENT_TYPES), UNKNOWN_EVENT_TYPE)
    else:
        events = pd.Series(columns.default_event, index=frame.index, dtype=object)

    if columns.value is not None:
        values = _parse_floats(frame[columns.value])
        verdicts.reject(~np.isfinite(values), invalid_float(columns.value))
    else:
        values = np.ones(len(frame))

    retail = _retail_columns(frame, columns.retail, verdicts)

    if known_items is not None:
        verdicts.reject(~items.isin(known_items), UNKNOWN_ITEM)

    accepted = pd.DataFrame(
        {
            USER_ID: users[verdicts.ok],
            ITEM_ID: items[verdicts.ok],
            TIMESTAMP: np.floor(seconds[verdicts.ok]).astype(np.int64),
            EVENT_TYPE: events[verdicts.ok],
            VALUE: values[verdicts.ok],
            **{name: column[verdicts.ok] for name, column in retail.items()},
        }
    )
    repeated = accepted.duplicated(subset=list(DUPLICATE_KEY)).to_numpy()
    duplicates = np.zeros(len(frame), dtype=bool)
    duplicates[verdicts.ok] = repeated
    verdicts.reject(duplicates, DUPLICATE_INTERACTION)
    return ValidatedTable(
        name=raw.name,
        accepted=accepted[~repeated].reset_index(drop=True),
        quarantine=_quarantine(raw, verdicts),
        rows_read=raw.rows_read,
        ignored_columns=columns.ignored,
        notes=tuple(notes),
    )


def _retail_columns(
    frame: pd.DataFrame, kinds: dict[str, str], verdicts: _Verdicts
) -> dict[str, pd.Series]:
    """The retail columns the source has: quantity and price as floats (empty: NaN, unknown;
    negative values are returns or refunds, kept), basket ids as text (empty: None)."""
    columns: dict[str, pd.Series] = {}
    for name, kind in kinds.items():
        text = frame[name].str.strip()
        if kind == "token":
            columns[name] = text.where(text != "", None)
            continue
        numbers = _parse_floats(text)
        verdicts.reject((text != "").to_numpy() & ~np.isfinite(numbers), invalid_float(name))
        columns[name] = pd.Series(numbers, index=frame.index)
    return columns


def validate_attributes(raw: RawTable, id_column: str) -> ValidatedTable:
    """Validate a user or item table; ``age`` must be years 0..120 or a band of them
    (``app.data.age``), floats finite, ids unique."""
    frame = raw.frame
    verdicts = _Verdicts(len(frame))
    ids = frame[id_column].str.strip()
    verdicts.reject(ids == "", empty_value(id_column))
    columns: dict[str, pd.Series | np.ndarray | list[object]] = {id_column: ids}
    for name, kind in raw.fields.items():
        if name == id_column:
            continue
        text = frame[name]
        if name == AGE_FIELD:
            reasons = text.map(_age_reason).to_numpy()
            for reason in ("invalid age", "age out of range"):
                verdicts.reject(reasons == reason, reason)
        columns[name] = _convert_attribute(name, kind, text, verdicts)
    accepted = pd.DataFrame(columns, index=frame.index)
    duplicates = np.zeros(len(frame), dtype=bool)
    duplicates[verdicts.ok] = ids[verdicts.ok].duplicated()
    verdicts.reject(duplicates, f"duplicate {id_column}")
    return ValidatedTable(
        name=raw.name,
        accepted=accepted[verdicts.ok].reset_index(drop=True),
        quarantine=_quarantine(raw, verdicts),
        rows_read=raw.rows_read,
        fields={name: kind for name, kind in raw.fields.items() if name != id_column},
    )


def _age_reason(text: str) -> str | None:
    if not text.strip():
        return None
    try:
        parse_age(text)
    except InvalidAge as invalid:
        return invalid.reason
    return None


def _convert_attribute(
    name: str, kind: FieldType, text: pd.Series, verdicts: _Verdicts
) -> pd.Series | np.ndarray | list[object]:
    """Typed values of one attribute column; empty values mean "missing" and are allowed."""
    if kind is FieldType.TOKEN:
        return text
    if kind is FieldType.TOKEN_SEQ:
        return text.str.split()
    if kind is FieldType.FLOAT:
        numbers = _parse_floats(text)
        verdicts.reject((text.str.strip() != "") & ~np.isfinite(numbers), invalid_float(name))
        return numbers
    sequences = [_float_list(value) for value in text.to_numpy()]
    verdicts.reject(np.array([seq is None for seq in sequences]), invalid_float(name))
    return [seq if seq is not None else [] for seq in sequences]


def _float_list(text: str) -> list[float] | None:
    try:
        numbers = [float(part) for part in text.split()]
    except ValueError:
        return None
    return numbers if all(np.isfinite(numbers)) else None


def _parse_floats(text: pd.Series) -> np.ndarray:
    """Floats, NaN where not a decimal number (so ``nan`` is NaN; ``1e999`` parses to inf)."""
    trimmed = pc.utf8_trim_whitespace(pa.array(text, type=pa.string()))
    is_number = pc.match_substring_regex(trimmed, DECIMAL_NUMBER)
    numbers = pc.cast(pc.if_else(is_number, trimmed, None), pa.float64())
    return numbers.to_numpy(zero_copy_only=False)


def parse_timestamps(text: pd.Series) -> np.ndarray:
    """Unix seconds (float, NaN when unparseable) from seconds, milliseconds or ISO-8601 text."""
    stripped = text.str.strip()
    numbers = _parse_floats(stripped)
    with np.errstate(invalid="ignore"):
        numbers = np.where(np.abs(numbers) >= MILLISECONDS_THRESHOLD, numbers / 1000.0, numbers)
    needs_iso = (
        np.isnan(numbers) & (stripped != "").to_numpy() & ~stripped.isin(CLOCK_WORDS).to_numpy()
    )
    if needs_iso.any():
        numbers[needs_iso] = _iso_seconds(stripped[needs_iso].to_numpy(dtype=object))
    return numbers


def _iso_seconds(texts: np.ndarray) -> np.ndarray:
    """Unix seconds of ISO-8601 strings, each read on its own (NaN when not ISO-8601)."""
    interleaved = np.empty(2 * len(texts), dtype=object)
    interleaved[0::2] = OFFSET_RESET
    interleaved[1::2] = texts
    moments = pd.to_datetime(
        pd.Series(interleaved), utc=True, errors="coerce", format="ISO8601", cache=False
    )
    return ((moments[1::2] - EPOCH) / pd.Timedelta(seconds=1)).to_numpy(np.float64)


def _quarantine(raw: RawTable, verdicts: _Verdicts) -> pd.DataFrame:
    rejected = ~verdicts.ok
    rows = raw.frame.loc[rejected].copy()
    rows.insert(0, REASON, verdicts.reasons[rejected])
    rows.insert(0, LINE, raw.lines[rejected])
    parts = [part for part in (rows, raw.malformed) if not part.empty]
    if not parts:
        return rows.reset_index(drop=True)
    return pd.concat(parts, ignore_index=True).sort_values(LINE, kind="stable", ignore_index=True)
