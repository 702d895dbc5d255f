"""What an ``age`` attribute may hold: years (``34``) or a band as retail and survey data give
it (``45-54``, ``65+``). Validation and tokenisation read it through this one rule, so a row
ingest accepts is one the tokens can always describe."""

from __future__ import annotations

import math
import re

AGE_FIELD = "age"
MAX_AGE = 120
_RANGE = re.compile(r"^(\d{1,3})\s*[-\u2013]\s*(\d{1,3})$")
_OPEN_ENDED = re.compile(r"^(\d{1,3})\s*\+$")


class InvalidAge(ValueError):
    """Neither a number nor a band of years; ``reason`` is the quarantine reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_age(text: str) -> float | str:
    """Years as a float, or a band normalised to ``lo-hi`` / ``lo+``."""
    value = text.strip()
    try:
        years = float(value)
    except ValueError:
        return _band(value)
    if not math.isfinite(years):
        raise InvalidAge("invalid age")
    if not 0 <= years <= MAX_AGE:
        raise InvalidAge("age out of range")
    return years


def _band(value: str) -> str:
    if (both := _RANGE.match(value)) is not None:
        low, high = int(both[1]), int(both[2])
        if low > high:
            raise InvalidAge("invalid age")
        if high > MAX_AGE:
            raise InvalidAge("age out of range")
        return f"{low}-{high}"
    if (open_ended := _OPEN_ENDED.match(value)) is not None:
        if int(open_ended[1]) > MAX_AGE:
            raise InvalidAge("age out of range")
        return f"{int(open_ended[1])}+"
    raise InvalidAge("invalid age")
