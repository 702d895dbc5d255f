"""The batch side of the event log: a consumer group that copies events into Parquet parts the
next ``recserve build`` trains on (the lambda architecture's batch layer; the API's in-request
profile update is the speed layer).

Delivery is at-least-once: a part is written before its events are acked, so a crash between
the two writes the same events again into a later part. ``load_event_parts`` drops those
repeats by ``event_id``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from app.events.log import EventLog, open_event_log
from app.events.types import LoggedEvent
from app.settings import Settings

if TYPE_CHECKING:  # the API imports this module (the group's name) and never loads pandas
    import pandas as pd

log = logging.getLogger(__name__)

OFFLINE_GROUP = "offline"
PART_GLOB = "part-*.parquet"
PART_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("event_type", pa.string()),
        ("timestamp", pa.int64()),
        ("value", pa.float64()),
    ]
)


@dataclass(frozen=True)
class SinkReport:
    events: int
    parts: int


async def drain_to_parquet(
    event_log: EventLog, parts_dir: Path, *, consumer: str, batch: int = 10_000
) -> SinkReport:
    """Copy every event the ``offline`` group has not acked into new parts under
    ``parts_dir``, then ack them. Returns when the group has caught up."""
    parts_dir.mkdir(parents=True, exist_ok=True)
    events = parts = 0
    while True:
        logged = await event_log.read(OFFLINE_GROUP, consumer, count=batch, block_ms=0)
        if not logged:
            return SinkReport(events, parts)
        _write_part(parts_dir, logged)
        await event_log.ack(OFFLINE_GROUP, [entry.position for entry in logged])
        events += len(logged)
        parts += 1


def sink_event_log(settings: Settings) -> SinkReport:
    """Open the configured event log, drain the ``offline`` group into
    ``settings.event_parts_dir`` and close it. Raises ``EventLogUnavailable``."""

    async def run() -> SinkReport:
        event_log = open_event_log(settings)
        try:
            return await drain_to_parquet(
                event_log, settings.event_parts_dir, consumer=socket.gethostname()
            )
        finally:
            await event_log.close()

    return asyncio.run(run())


def load_event_parts(parts_dir: Path) -> pd.DataFrame:
    """Every sunk event once (first copy of each ``event_id``), in the interactions layout:
    ``user_id, item_id, timestamp, event_type, value``."""
    paths = sorted(parts_dir.glob(PART_GLOB)) if parts_dir.is_dir() else []
    if not paths:
        return PART_SCHEMA.empty_table().to_pandas().drop(columns="event_id")
    frame = pa.concat_tables(pq.read_table(p, schema=PART_SCHEMA) for p in paths).to_pandas()
    frame = frame.drop_duplicates("event_id", keep="first")
    return frame.drop(columns="event_id").reset_index(drop=True)


def _write_part(parts_dir: Path, logged: list[LoggedEvent]) -> Path:
    events = [entry.event for entry in logged]
    table = pa.table(
        {
            "event_id": [e.event_id for e in events],
            "user_id": [e.user_id for e in events],
            "item_id": [e.item_id for e in events],
            "event_type": [e.type for e in events],
            "timestamp": [int(e.timestamp) for e in events],
            "value": [1.0 if e.value is None else float(e.value) for e in events],
        },
        schema=PART_SCHEMA,
    )
    # Parts sort by name in log order: the first position, zero-padded, leads the name.
    name = f"part-{_sortable(logged[0].position)}-{uuid.uuid4().hex[:8]}.parquet"
    staging = parts_dir / f".{name}.tmp"
    pq.write_table(table, staging)
    os.replace(staging, parts_dir / name)
    return parts_dir / name


def _sortable(position: str) -> str:
    """SQLite positions are integers, Redis ids ``ms-seq``: pad each number to sort as text."""
    return "-".join(part.zfill(20) for part in position.split("-"))
