"""Unix seconds from timestamp text on Spark, as ``app.data.validate.parse_timestamps`` reads
it: a decimal number of seconds (milliseconds from ``MILLISECONDS_THRESHOLD`` on), else
ISO-8601 text as pandas reads it (``to_datetime(format="ISO8601", utc=True)``), else null.

pandas' ISO-8601 reader accepts more than the standard and less than Spark's timestamp cast,
so the grammar is written out here, rule for rule: a 4-digit year; month and day as ``MMDD``,
or after one of ``- . / \\`` or a space (1 or 2 digits each; year-month may stop there); ``T``
or a space, the hour (2 digits unless a ``:`` follows), minutes and seconds after ``:`` (1 or
2 digits) or without (2 digits), up to 18 fraction digits of which 9 count; then, after any
white space, ``Z`` or an offset ``+H[H][[:]M[M]]``. A time without an offset is UTC. The
moment must fit in pandas' nanoseconds (1677-09-21 to 2262-04-11).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.data.interaction_rules import MILLISECONDS_THRESHOLD, SECONDS_PER_DAY
from app.spark.text import decimal_number, strip

if TYPE_CHECKING:
    from pyspark.sql import Column

ISO_8601 = (
    r"^(\d{4})"  # 1 year
    r"(?:([-./\\ ])(\d{1,2})(?:\2(\d{1,2})|$)|(\d{2})(\d{2}))"  # 2 sep, 3-4 / 5-6 month, day
    r"(?:[T ](\d{1,2})(?:(?<=\d\d)|(?=:))"  # 7 hour: 2 digits unless a ":" follows
    r"(?::(\d{1,2})(?::(\d{1,2})(?:\.(\d{0,18}))?)?"  # 8 minute, 9 second, 10 fraction
    r"|(\d{2})(?:(\d{2})(?:\.(\d{0,18}))?)?)?"  # 11 minute, 12 second, 13 fraction
    r"(?:\s*(?:Z|([+-])(\d{1,2})(?::?(\d{1,2}))?))?)?$"  # 14 sign, 15-16 offset h, m
)
# One match rewrites the text into its parts, one per field of the split below; of each pair
# of alternatives only one took part, and a group that did not is empty.
_PARTS = "$1|$3$5|$4$6|$7|$8$11|$9$12|$10$13|$14|$15|$16"
NANOSECONDS = 1_000_000_000


def timestamp_seconds(text: Column) -> Column:
    """Unix seconds (double) of ``text``, or null when it is not a timestamp."""
    from pyspark.sql import functions as F

    trimmed = strip(text)
    number = decimal_number(trimmed)
    seconds = F.when(F.abs(number) >= MILLISECONDS_THRESHOLD, number / 1000.0).otherwise(number)
    return F.coalesce(seconds, F.when(trimmed.rlike(ISO_8601), _iso_seconds(trimmed)))


def _iso_seconds(text: Column) -> Column:
    from pyspark.sql import functions as F

    parts = F.split(F.regexp_replace(text, ISO_8601, _PARTS), r"\|", -1)

    def number(index: int, default: int | None = None) -> Column:
        value = F.get(parts, index).try_cast("int")
        return value if default is None else F.coalesce(value, F.lit(default))

    year, month, day = number(0), number(1), number(2, 1)
    hour, minute, second = number(3, 0), number(4, 0), number(5, 0)
    # Fraction digits past the ninth are dropped, as pandas drops them.
    nanos = F.rpad(F.substring(F.get(parts, 6), 1, 9), 9, "0").try_cast("long")
    offset_sign = F.when(F.get(parts, 7) == "-", -1).otherwise(1)
    offset_hours, offset_minutes = number(8, 0), number(9, 0)
    # Null for a day the month does not have (and month 0 or 13): pandas refuses those too.
    date = F.try_make_timestamp_ntz(year, month, day, F.lit(0), F.lit(0), F.lit(0)).cast("date")
    wall_seconds = F.unix_date(date).cast("long") * SECONDS_PER_DAY + hour * 3600 + minute * 60
    offset_seconds = (offset_sign * (offset_hours * 3600 + offset_minutes * 60)).cast("long")
    # pandas holds a moment as int64 nanoseconds, checks the wall time against them (outside,
    # no moment: try_* give null) and then subtracts the offset, overflowing silently within
    # a day of the ends (a moment out of range either way). Seconds are those nanoseconds as a
    # double divided by 1e9, rounding included.
    wall = F.try_add(F.try_multiply(wall_seconds + second, F.lit(NANOSECONDS)), nanos)
    utc = F.try_subtract(wall, offset_seconds * NANOSECONDS)
    seconds = F.coalesce(utc.cast("double"), wall.cast("double") - offset_seconds * 1e9) / 1e9
    in_range = (
        (hour < 24) & (minute < 60) & (second < 60) & (offset_hours < 24) & (offset_minutes < 60)
    )
    return F.when(in_range & wall.isNotNull(), seconds)
