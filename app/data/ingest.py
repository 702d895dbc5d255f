"""Ingest a source (RecBole atomic dir, or CSV/Parquet with a mapping) into ``data_dir``.

Everything is written to a staging directory beside ``data_dir`` and swapped into place at the
end, so a failed ingest leaves the previous data untouched rather than half replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from app.data.raw import REASON
from app.data.report import IngestReport, TableSummary
from app.data.sources import read_and_validate
from app.data.spreadsheet import write_safe_csv
from app.data.tabular import TabularMapping
from app.data.types import (
    EVENT_TYPE,
    INTERACTIONS_FILE,
    ITEM_ID,
    ITEMS_FILE,
    RETAIL_COLUMNS,
    SCHEMA_FILE,
    SUMMARY_FILE,
    TIMESTAMP,
    USER_ID,
    USERS_FILE,
    VALUE,
    DataFormatError,
    Dataset,
    FieldType,
)
from app.data.validate import InteractionsValidator, ValidatedTable, ValidatedTables

QUARANTINE_DIR = "quarantine"
IMPRESSION = "impression"
INTERACTIONS_SCHEMA = pa.schema(
    [
        (USER_ID, pa.string()),
        (ITEM_ID, pa.string()),
        (TIMESTAMP, pa.int64()),
        (EVENT_TYPE, pa.string()),
        (VALUE, pa.float64()),
    ]
)
ARROW_TYPES = {
    FieldType.TOKEN: pa.string(),
    FieldType.TOKEN_SEQ: pa.list_(pa.string()),
    FieldType.FLOAT: pa.float64(),
    FieldType.FLOAT_SEQ: pa.list_(pa.float64()),
}


def ingest(
    source: Path,
    data_dir: Path,
    *,
    mapping: TabularMapping | None = None,
    logged_events: pd.DataFrame | None = None,
    interactions_validator: InteractionsValidator | None = None,
) -> IngestReport:
    """Read, validate and write ``source`` to ``data_dir``; return what was kept and rejected.

    ``source`` is a RecBole atomic directory, or an interactions file (.csv/.tsv/.parquet) read
    with ``mapping`` (identity mapping when None). ``logged_events`` (interactions layout, as
    ``app.events.sink.load_event_parts`` returns them) are events the API already validated;
    they join the interactions. ``interactions_validator`` (a batch engine's) reads and
    validates the interactions of an atomic directory in this process's place. Raises
    ``DataFormatError`` when a file cannot be parsed at all; bad rows are quarantined instead.
    """
    started = time.perf_counter()
    if not source.exists():
        raise DataFormatError(f"{source}: no such file or directory")
    validated, source_columns = read_and_validate(
        source, mapping, int(time.time()), interactions_validator
    )
    if logged_events is not None and len(logged_events):
        _merge_logged_events(validated, logged_events)
    validated.interactions.accepted = sort_interactions(validated.interactions.accepted)

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = data_dir.with_name(f".{data_dir.name}.staging-{uuid.uuid4().hex}")
    staging.mkdir()
    try:
        fingerprint = _write_tables(validated, staging)
        report = replace(
            _report(source, data_dir, validated, fingerprint, time.perf_counter() - started),
            source_columns=source_columns,
        )
        (staging / SUMMARY_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        _swap_into_place(staging, data_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _merge_logged_events(validated: ValidatedTables, events: pd.DataFrame) -> None:
    """Append real-time events to the accepted interactions. Impressions are not interactions
    (nothing was chosen), and events for items the catalogue no longer has are left out; the
    interactions notes say how many of each."""
    shown_only = events[EVENT_TYPE].to_numpy() == IMPRESSION
    unknown = np.zeros(len(events), dtype=bool)
    if validated.items is not None:
        unknown = ~events[ITEM_ID].isin(validated.items.accepted[ITEM_ID]).to_numpy()
    kept = events[~shown_only & ~unknown]
    table = validated.interactions
    # Retail columns the source has and the events lack stay unknown (NaN / None).
    joined = kept.reindex(columns=table.accepted.columns).astype(table.accepted.dtypes)
    table.accepted = pd.concat([table.accepted, joined], ignore_index=True)
    table.notes = (
        *table.notes,
        f"event log: {len(kept)} events merged, {int(shown_only.sum())} impressions and "
        f"{int((unknown & ~shown_only).sum())} events for items not in the catalogue left out",
    )


def sort_interactions(interactions: pd.DataFrame) -> pd.DataFrame:
    """Order by (user_id, timestamp, item_id), stable; integer codes keep this fast at 5M rows."""
    user_codes = pd.factorize(interactions[USER_ID], sort=True)[0]
    item_codes = pd.factorize(interactions[ITEM_ID], sort=True)[0]
    order = np.lexsort((item_codes, interactions[TIMESTAMP].to_numpy(), user_codes))
    return interactions.iloc[order].reset_index(drop=True)


def load_dataset(data_dir: Path) -> Dataset:
    """Read back what ``ingest`` wrote: ids as str, timestamps int64, seq fields as lists."""
    schema_path = data_dir / SCHEMA_FILE
    if not schema_path.is_file():
        raise FileNotFoundError(f"{schema_path}: no ingested data here; run ingest first")
    schema = json.loads(schema_path.read_text())
    user_fields = {name: FieldType(kind) for name, kind in schema["user_fields"].items()}
    item_fields = {name: FieldType(kind) for name, kind in schema["item_fields"].items()}
    return Dataset(
        interactions=_read_parquet(data_dir / INTERACTIONS_FILE, {}),
        users=_read_parquet(data_dir / USERS_FILE, user_fields),
        items=_read_parquet(data_dir / ITEMS_FILE, item_fields),
        user_fields=user_fields,
        item_fields=item_fields,
    )


def read_fingerprint(data_dir: Path) -> str:
    """The fingerprint recorded by the last ingest into ``data_dir``."""
    return str(json.loads((data_dir / SUMMARY_FILE).read_text())["fingerprint"])


def _read_parquet(path: Path, fields: dict[str, FieldType]) -> pd.DataFrame:
    table = pq.read_table(path)
    frame = table.to_pandas()
    for name, kind in fields.items():
        if kind in (FieldType.TOKEN_SEQ, FieldType.FLOAT_SEQ):
            # to_pandas gives numpy arrays per cell; the contract promises Python lists.
            frame[name] = pd.Series(table.column(name).to_pylist(), dtype=object)
    return frame


def _write_tables(validated: ValidatedTables, out_dir: Path) -> str:
    """Write the three tables, schema and quarantine files; return the content fingerprint."""
    user_fields = validated.users.fields if validated.users else {}
    item_fields = validated.items.fields if validated.items else {}
    schema = {
        "user_fields": {name: kind.value for name, kind in user_fields.items()},
        "item_fields": {name: kind.value for name, kind in item_fields.items()},
    }
    files = {
        INTERACTIONS_FILE: (
            validated.interactions.accepted,
            _interactions_schema(validated.interactions.accepted),
        ),
        USERS_FILE: _attribute_frame(validated.users, USER_ID, user_fields),
        ITEMS_FILE: _attribute_frame(validated.items, ITEM_ID, item_fields),
    }
    digest = hashlib.sha256()
    for file_name, (frame, arrow_schema) in files.items():
        table = pa.Table.from_pandas(frame, schema=arrow_schema, preserve_index=False)
        # Without pandas metadata the bytes depend only on content and the Parquet writer.
        pq.write_table(table.replace_schema_metadata(None), out_dir / file_name)
        digest.update(file_name.encode() + b"\0" + (out_dir / file_name).read_bytes())
    schema_text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    (out_dir / SCHEMA_FILE).write_text(schema_text)
    digest.update(SCHEMA_FILE.encode() + b"\0" + schema_text.encode())

    for table in (validated.interactions, validated.users, validated.items):
        if table is not None and not table.quarantine.empty:
            (out_dir / QUARANTINE_DIR).mkdir(exist_ok=True)
            write_safe_csv(table.quarantine, out_dir / QUARANTINE_DIR / f"{table.name}.csv")
    return f"sha256:{digest.hexdigest()}"


def _interactions_schema(accepted: pd.DataFrame) -> pa.Schema:
    """The canonical columns, then the retail columns the source had."""
    retail = [
        (name, pa.string() if kind == "token" else pa.float64())
        for name, kind in RETAIL_COLUMNS.items()
        if name in accepted
    ]
    return pa.schema([*INTERACTIONS_SCHEMA, *retail])


def _attribute_frame(
    table: ValidatedTable | None, id_column: str, fields: dict[str, FieldType]
) -> tuple[pd.DataFrame, pa.Schema]:
    arrow_schema = pa.schema(
        [(id_column, pa.string())] + [(name, ARROW_TYPES[kind]) for name, kind in fields.items()]
    )
    frame = table.accepted if table is not None else arrow_schema.empty_table().to_pandas()
    return frame, arrow_schema


def _summary(table: ValidatedTable) -> TableSummary:
    reasons = table.quarantine[REASON].value_counts() if not table.quarantine.empty else None
    return TableSummary(
        rows_read=table.rows_read,
        accepted=len(table.accepted),
        quarantined=len(table.quarantine),
        reasons={str(k): int(v) for k, v in reasons.items()} if reasons is not None else {},
        ignored_columns=table.ignored_columns,
        quarantine_file=f"{QUARANTINE_DIR}/{table.name}.csv" if reasons is not None else None,
    )


def _report(
    source: Path, data_dir: Path, validated: ValidatedTables, fingerprint: str, seconds: float
) -> IngestReport:
    interactions = validated.interactions.accepted
    users = interactions[USER_ID].drop_duplicates()
    notes = list(validated.interactions.notes)
    if validated.users is None:
        notes.append("no user file: every user is without attributes")
    if validated.items is None:
        notes.append("no item file: item ids were not checked against a catalogue")
    known_users = validated.users.accepted[USER_ID] if validated.users else pd.Series(dtype=object)
    timestamps = interactions[TIMESTAMP]
    return IngestReport(
        source=str(source),
        data_dir=str(data_dir),
        tables={
            table.name: _summary(table)
            for table in (validated.interactions, validated.users, validated.items)
            if table is not None
        },
        distinct_users=len(users),
        distinct_items=int(interactions[ITEM_ID].nunique()),
        users_without_attributes=int((~users.isin(known_users)).sum()),
        time_min=int(timestamps.min()) if len(timestamps) else None,
        time_max=int(timestamps.max()) if len(timestamps) else None,
        fingerprint=fingerprint,
        seconds=round(seconds, 3),
        notes=tuple(notes),
    )


def _swap_into_place(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with two renames; the old copy is deleted afterwards."""
    if not target.exists():
        os.replace(staging, target)
        return
    retired = target.with_name(f".{target.name}.retired-{uuid.uuid4().hex}")
    os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired)
