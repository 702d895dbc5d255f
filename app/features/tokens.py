"""Attribute tokens: the strings the model learns user and item attributes as.

Training and serving both read these exact strings (serving through the ``attribute_tokens``
feature), so every rule lives here:

* ``token`` fields give ``field=value``; ``token_seq`` fields one ``field=element`` per element;
* a field named ``age`` (token or float) gives its decade, ``age=20s``, when it holds years,
  and the band itself, ``age=45-54``, when it holds one (``app.data.age``);
* other ``float`` fields give their quintile, ``income=q3``, with edges computed on the whole
  table (returned, so the same buckets can be rebuilt later);
* ``float_seq`` fields (vectors) give no tokens, nor do missing values (None, NaN, blank);
* ids (``user_id``, ``item_id``) never become tokens.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.data.age import AGE_FIELD, InvalidAge, parse_age
from app.data.types import ITEM_ID, USER_ID, FieldType

QUANTILES = (0.2, 0.4, 0.6, 0.8)
ID_COLUMNS = frozenset((USER_ID, ITEM_ID))

QuantileEdges = Mapping[str, tuple[float, ...]]


@dataclass(frozen=True)
class AttributeTokens:
    """Tokens of each row of an attribute table, and the quintile edges used to make them.

    ``by_row[i]`` belongs to row ``i`` of the table; tokens follow the field order, then the
    element order of sequences, without repeats.
    """

    ids: tuple[str, ...]
    by_row: tuple[tuple[str, ...], ...]
    quantile_edges: dict[str, tuple[float, ...]]

    def by_id(self) -> dict[str, tuple[str, ...]]:
        """``{id: tokens}``, the shape training reads."""
        return dict(zip(self.ids, self.by_row, strict=True))


def fit_quantile_edges(
    table: pd.DataFrame, fields: Mapping[str, FieldType]
) -> dict[str, tuple[float, ...]]:
    """Inner quintile edges (four values) of every float field except ``age``, over the
    non-missing values of ``table``; a field with no values gets no edges (and no tokens)."""
    edges: dict[str, tuple[float, ...]] = {}
    for name in _quantile_fields(fields):
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            edges[name] = tuple(float(x) for x in np.quantile(values, QUANTILES))
    return edges


def attribute_tokens(
    table: pd.DataFrame,
    fields: Mapping[str, FieldType],
    id_column: str,
    *,
    quantile_edges: QuantileEdges | None = None,
) -> AttributeTokens:
    """Tokenise every row of a users or items table.

    ``fields`` types every attribute column; ``quantile_edges`` defaults to edges fitted on
    ``table`` itself. Raises ``ValueError`` naming the column (and id, for a bad age) when a
    column has no declared type, a declared field is absent, or an age is neither years nor a band.
    """
    _check_columns(table, fields, id_column)
    ids = table[id_column].astype(str).to_numpy()
    edges = dict(fit_quantile_edges(table, fields) if quantile_edges is None else quantile_edges)
    rows: list[list[str]] = [[] for _ in ids]
    for name, kind in fields.items():
        if name in ID_COLUMNS:
            continue
        tokens = _field_tokens(name, kind, table[name], ids, edges)
        for row, field_tokens in zip(rows, tokens, strict=True):
            row.extend(field_tokens)
    by_row = tuple(tuple(dict.fromkeys(row)) for row in rows)  # drop repeats, keep order
    return AttributeTokens(ids=tuple(ids), by_row=by_row, quantile_edges=edges)


def age_bucket(value: float) -> str:
    """``age=20s`` for 20 <= age < 30."""
    return f"{AGE_FIELD}={int(value // 10) * 10}s"


def _quantile_fields(fields: Mapping[str, FieldType]) -> list[str]:
    return [
        name
        for name, kind in fields.items()
        if kind is FieldType.FLOAT and name != AGE_FIELD and name not in ID_COLUMNS
    ]


def _check_columns(table: pd.DataFrame, fields: Mapping[str, FieldType], id_column: str) -> None:
    if id_column not in table.columns:
        raise ValueError(f"attribute table lacks its id column {id_column!r}")
    missing = [name for name in fields if name not in table.columns]
    if missing:
        raise ValueError(f"attribute table lacks declared field(s) {missing}")
    untyped = [c for c in table.columns if c != id_column and c not in fields]
    if untyped:
        raise ValueError(f"attribute column(s) {untyped} have no field type")


def _field_tokens(
    name: str,
    kind: FieldType,
    column: pd.Series,
    ids: np.ndarray,
    edges: dict[str, tuple[float, ...]],
) -> list[list[str]]:
    """Tokens of one column, one list per row."""
    values = column.tolist()
    if name == AGE_FIELD and kind in (FieldType.TOKEN, FieldType.FLOAT):
        return [_age_tokens(v, entity_id) for v, entity_id in zip(values, ids, strict=True)]
    if kind is FieldType.TOKEN:
        return [[f"{name}={str(v).strip()}"] if not is_missing(v) else [] for v in values]
    if kind is FieldType.TOKEN_SEQ:
        return [_sequence_tokens(name, v) for v in values]
    if kind is FieldType.FLOAT and name in edges:
        # A value equal to an edge falls in the lower bucket: q1 .. q5.
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        buckets = np.searchsorted(np.asarray(edges[name]), numbers, side="left") + 1
        labels = [f"{name}=q{b}" for b in range(1, len(edges[name]) + 2)]
        present = np.isfinite(numbers)
        return [[labels[b - 1]] if ok else [] for b, ok in zip(buckets, present, strict=True)]
    # float fields with no observed values, and float_seq vectors, carry no tokens.
    return [[] for _ in values]


def _age_tokens(value: object, entity_id: str) -> list[str]:
    if is_missing(value):
        return []
    try:
        age = parse_age(str(value))
    except InvalidAge as invalid:
        raise ValueError(f"{AGE_FIELD} of {entity_id!r}: {invalid.reason}: {value!r}") from None
    return [age_bucket(age) if isinstance(age, float) else f"{AGE_FIELD}={age}"]


def _sequence_tokens(name: str, value: object) -> list[str]:
    if value is None or isinstance(value, float):  # None or NaN: missing
        return []
    # Lists normally; a still space-separated string (RecBole's text form) is split the same way.
    elements = value.split() if isinstance(value, str) else value
    if not isinstance(elements, Iterable):
        raise ValueError(f"{name}: expected a sequence, got {value!r}")
    return [f"{name}={e}" for e in (str(x).strip() for x in elements) if e]


def is_missing(value: object) -> bool:
    """None, NaN, a blank string or an empty sequence: an attribute the entity does not have."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | tuple | np.ndarray) and len(value) == 0
