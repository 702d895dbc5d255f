"""What the interaction rules are, apart from how they run: which source column makes which
standard column, what counts as a number or a timestamp, and the reason each rule gives.

Two implementations read these: ``app.data.validate`` (pandas and Arrow, in process) and the
Spark engine's, so the two cannot drift apart on a name, a bound or a reason string.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.data.types import EVENT_TYPE, ITEM_ID, RETAIL_COLUMNS, TIMESTAMP, USER_ID, VALUE

SECONDS_PER_DAY = 86_400
# Numeric timestamps at or above this are milliseconds: as seconds they would be year 5138.
MILLISECONDS_THRESHOLD = 1e11
EVENT_TYPE_COLUMNS = (EVENT_TYPE, "type")
VALUE_COLUMNS = (VALUE, "price", "rating")
RATING = "rating"
# A number is written in decimal notation (not nan, inf, hex or with separators); the float
# casts of Arrow and Spark fail on other text, so values go through this filter first. The
# pattern means the same to RE2 (Arrow) and java.util.regex (Spark): \d is ASCII in both.
DECIMAL_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
# Rows repeating all of these (timestamp floored to seconds) are one interaction.
DUPLICATE_KEY = (USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE)

INVALID_TIMESTAMP = "invalid timestamp"
TIMESTAMP_OUT_OF_RANGE = "timestamp out of range"
UNKNOWN_EVENT_TYPE = "unknown event_type"
UNKNOWN_ITEM = f"unknown {ITEM_ID}"
DUPLICATE_INTERACTION = "duplicate interaction"


def empty_value(column: str) -> str:
    return f"empty {column}"


def invalid_float(column: str) -> str:
    return f"invalid float in {column}"


def missing_timestamp_note(path: Path) -> str:
    return f"{path}: no timestamp column, every timestamp set to 0"


@dataclass(frozen=True)
class InteractionColumns:
    """The source columns each standard column comes from; None where the source has none
    (no timestamp: 0, no event type: ``default_event``, no value: 1.0). ``retail`` maps the
    retail columns present to their kind, in ``RETAIL_COLUMNS`` order."""

    timestamp: str | None
    event: str | None
    default_event: str
    value: str | None
    retail: dict[str, str]
    ignored: tuple[str, ...]


def interaction_columns(names: list[str]) -> InteractionColumns:
    """Choose the columns of an interactions table with these column ``names``."""
    event = next((c for c in EVENT_TYPE_COLUMNS if c in names), None)
    value = next((c for c in VALUE_COLUMNS if c in names), None)
    retail = {name: kind for name, kind in RETAIL_COLUMNS.items() if name in names}
    used = {USER_ID, ITEM_ID, TIMESTAMP, event, value, *retail}
    return InteractionColumns(
        timestamp=TIMESTAMP if TIMESTAMP in names else None,
        event=event,
        default_event="rate" if RATING in names else "interaction",
        value=value,
        retail=retail,
        ignored=tuple(name for name in names if name not in used),
    )
