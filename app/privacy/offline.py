"""Erased users out of the batch data.

``erase_from_tables`` rewrites every Parquet table (and quarantine CSV) of the given
directories that has a ``user_id`` column without the erased users' rows. ``DELETE /users/{id}``
runs it on the ingested data, the offline feature tables and the event log's Parquet parts;
``build`` runs it on the ingested data right after reading its source, so a rebuild from source
files that still hold an erased user (they belong to the operator) never brings them back.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.data.types import USER_ID
from app.privacy.pseudonym import Pseudonymizer
from app.privacy.tombstones import open_tombstones
from app.settings import Settings

QUARANTINE_DIR = "quarantine"


def erase_from_tables(
    directories: Iterable[Path], erased: set[str], pseudonyms: Pseudonymizer
) -> int:
    """Drop the rows of users whose pseudonym is in ``erased``; return how many rows went."""
    if not erased:
        return 0
    dropped = 0
    for directory in directories:
        for path in sorted(directory.glob("*.parquet")):
            dropped += _filter_parquet(path, erased, pseudonyms)
        for path in sorted((directory / QUARANTINE_DIR).glob("*.csv")):
            dropped += _filter_csv(path, erased, pseudonyms)
    return dropped


def drop_erased_from_ingested(settings: Settings, data_dir: Path | None = None) -> int:
    """``erase_from_tables`` for freshly ingested data (the home's, or a build's staged
    ``data_dir``) and the erasure list."""
    erased = set(open_tombstones(settings).erased())
    directory = settings.data_dir if data_dir is None else data_dir
    return erase_from_tables([directory], erased, Pseudonymizer.from_settings(settings))


def _filter_parquet(path: Path, erased: set[str], pseudonyms: Pseudonymizer) -> int:
    if USER_ID not in pq.read_schema(path).names:
        return 0
    table = pq.read_table(path)
    users = table.column(USER_ID)
    gone = pa.array(_erased_ids(users.to_pylist(), erased, pseudonyms), type=users.type)
    kept = table.filter(pc.invert(pc.is_in(users, value_set=gone)))
    if kept.num_rows == table.num_rows:
        return 0
    temporary = path.with_name(f".{path.name}.erasing")
    pq.write_table(kept, temporary)
    os.replace(temporary, path)
    return table.num_rows - kept.num_rows


def _filter_csv(path: Path, erased: set[str], pseudonyms: Pseudonymizer) -> int:
    import pandas as pd  # here: the API imports this module and otherwise never loads pandas

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if USER_ID not in frame.columns:
        return 0
    gone = set(_erased_ids(frame[USER_ID].tolist(), erased, pseudonyms))
    kept = frame[~frame[USER_ID].isin(gone)]
    if len(kept) == len(frame):
        return 0
    temporary = path.with_name(f".{path.name}.erasing")
    kept.to_csv(temporary, index=False)
    os.replace(temporary, path)
    return len(frame) - len(kept)


def _erased_ids(
    user_ids: Iterable[str | None], erased: set[str], pseudonyms: Pseudonymizer
) -> list[str]:
    distinct = {user_id for user_id in user_ids if user_id is not None}
    return [user_id for user_id in distinct if pseudonyms.of(user_id) in erased]


def rows_of_user(directories: Iterable[Path], user_id: str) -> dict[str, list[dict[str, Any]]]:
    """``{file name: rows}`` of every Parquet table under ``directories`` holding ``user_id``."""
    found: dict[str, list[dict[str, Any]]] = {}
    for directory in directories:
        for path in sorted(directory.glob("*.parquet")):
            if USER_ID not in pq.read_schema(path).names:
                continue
            rows = pq.read_table(path, filters=[(USER_ID, "=", user_id)]).to_pylist()
            if rows:
                found[f"{directory.name}/{path.name}"] = rows
    return found
