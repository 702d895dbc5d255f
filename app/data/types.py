"""The canonical, validated dataset every later stage reads.

Ingestion turns any supported input (RecBole atomic files, CSV/Parquet with a column mapping,
the synthetic generator's output) into these three tables, written as Parquet under
``Settings.data_dir``:

* ``interactions.parquet``: ``user_id`` (str), ``item_id`` (str), ``timestamp`` (int64, Unix
  seconds), ``event_type`` (str: view|click|add_to_cart|purchase|rate|impression|interaction),
  ``value`` (float64: rating, price paid, or 1.0).
  Retail data may add, and ingestion then keeps: ``quantity`` (float64, units bought; NaN when
  a row has none), ``price`` (float64, what the line cost; NaN when none) and ``basket_id``
  (str, the order or basket the line belongs to; None when none). A column is written only
  when the source has it.
* ``users.parquet``: ``user_id`` (str) plus one column per attribute.
* ``items.parquet``: ``item_id`` (str) plus one column per attribute.

``schema.json`` beside them records each attribute's ``FieldType`` so later stages know how to
featurise a column without guessing. ``token_seq``/``float_seq`` columns hold Python lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the constants here are imported by the API, which never loads pandas
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
QUANTITY = "quantity"
PRICE = "price"
BASKET_ID = "basket_id"
# Optional retail columns of the interactions, with their atomic field types.
RETAIL_COLUMNS = {QUANTITY: "float", PRICE: "float", BASKET_ID: "token"}
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase", "rate", "impression", "interaction")


MAX_ERROR_CHARS = 500


class DataFormatError(ValueError):
    """An input file cannot be parsed at all; the message names the file and line.

    Messages quote the input they refuse (a header field, a parser's excerpt), and input can
    be anything: a 100 MB header field went whole to stderr. They are cut at
    ``MAX_ERROR_CHARS``, which keeps the file, the line and the reason that lead them."""

    def __init__(self, message: str) -> None:
        if len(message) > MAX_ERROR_CHARS:
            cut = len(message) - MAX_ERROR_CHARS
            message = f"{message[:MAX_ERROR_CHARS]}... ({cut} more characters not shown)"
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
