"""Raw text to values on Spark, as the local validation reads it with pandas and Arrow.

Spark 4 runs with ANSI mode on, where a failed cast stops the job: numbers are parsed only
after ``DECIMAL_NUMBER`` has matched, and with ``try_cast`` even then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.data.interaction_rules import DECIMAL_NUMBER

if TYPE_CHECKING:
    from pyspark.sql import Column

# The characters Python's str.strip and Arrow's utf8_trim_whitespace (the local path's) strip:
# Unicode White_Space and the ASCII separators U+001C..U+001F, 29 in all, U+3000 the last.
# Java's \s, even with (?U), leaves the separators out; btrim takes the exact set.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
# Arrow lower-cases U+0130 (I with a dot above) to "i", Java to "i" and a combining dot: the
# one letter on which the two disagree about whether a word lower-cases to ASCII.
DOTTED_CAPITAL_I = "\u0130"


def strip(text: Column) -> Column:
    from pyspark.sql import functions as F

    return F.btrim(text, F.lit(WHITESPACE))


def lower(text: Column) -> Column:
    from pyspark.sql import functions as F

    return F.lower(F.translate(text, DOTTED_CAPITAL_I, "I"))


def decimal_number(text: Column) -> Column:
    """The double ``text`` (stripped) writes in decimal notation, else null; ``1e999`` is
    infinity, as in Arrow."""
    from pyspark.sql import functions as F

    trimmed = strip(text)
    return F.when(trimmed.rlike(DECIMAL_NUMBER), trimmed.try_cast("double"))


def is_finite(number: Column) -> Column:
    """False for null, NaN and infinities (Spark's NaN equals itself and exceeds every
    number, so it is named here rather than left to a comparison)."""
    from pyspark.sql import functions as F

    return number.isNotNull() & ~F.isnan(number) & (F.abs(number) != float("inf"))
