"""The canonical, validated dataset every later stage reads.

Ingestion turns any supported input (RecBole atomic files, CSV/Parquet with a column mapping,
the synthetic generator's output) into these three tables, written as Parquet under
``Settings.data_dir``:

* ``interactions.parquet``: ``user_id`` (str), ``item_id`` (str), ``timestamp`` (int64, Unix
  seconds), ``event_type`` (str: view|click|add_to_cart|purchase|rate|impression|interaction),
  ``value`` (float64: rating, price paid, or 1.0).
* ``users.parquet``: ``user_id`` (str) plus one column per attribute.
* ``items.parquet``: ``item_id`` (str) plus one column per attribute.

``schema.json`` beside them records each attribute's ``FieldType`` so later stages know how to
featurise a column without guessing. ``token_seq``/``float_seq`` columns hold Python lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import pandas as pd

INTERACTIONS_FILE = "interactions.parquet"
USERS_FILE = "users.parquet"
ITEMS_FILE = "items.parquet"
SCHEMA_FILE = "schema.json"
SUMMARY_FILE = "summary.json"

USER_ID = "user_id"
ITEM_ID = "item_id"
TIMESTAMP = "timestamp"
EVENT_TYPE = "event_type"
VALUE = "value"
INTERACTION_COLUMNS = (USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE, VALUE)
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase", "rate", "impression", "interaction")


class DataFormatError(ValueError):
    """An input file cannot be parsed at all; the message names the file and line.

    Messages quote the offending input, which can be huge (a 100 MB header line): the message
    keeps its first ``MAX_MESSAGE_CHARS`` characters, where file, line and problem are named."""

    MAX_MESSAGE_CHARS = 500

    def __init__(self, message: str) -> None:
        cut = len(message) - self.MAX_MESSAGE_CHARS
        if cut > 0:
            message = f"{message[: self.MAX_MESSAGE_CHARS]}... ({cut} more characters)"
        super().__init__(message)


class FieldType(StrEnum):
    """RecBole atomic field types."""

    TOKEN = "token"
    TOKEN_SEQ = "token_seq"
    FLOAT = "float"
    FLOAT_SEQ = "float_seq"


@dataclass
class Dataset:
    """Validated tables plus the attribute field types of users and items."""

    interactions: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    user_fields: dict[str, FieldType] = field(default_factory=dict)
    item_fields: dict[str, FieldType] = field(default_factory=dict)
