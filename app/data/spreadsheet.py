"""CSV files people open in a spreadsheet, written so no cell runs as a formula.

Quarantined rows are the input the build refused, often hostile: a cell such as
``=cmd|' /C calc'!A0`` is a formula to Excel or LibreOffice when the file is opened. Text
starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a leading
``'``, which spreadsheets show as text (the OWASP advice for CSV injection). Numbers stay
numbers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_text(value: object) -> object:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_safe_csv(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as CSV at ``path`` (no index), every text cell and header made inert."""
    safe = frame.rename(columns=lambda name: as_text(str(name))).map(as_text)
    safe.to_csv(path, index=False)
