"""Shared by the privacy tests: events to post, and reading back what the stores hold."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq

from app.events.log import open_event_log
from app.events.types import Event
from app.settings import Settings


def event(user_id: str, item_id: str, kind: str = "view") -> dict[str, object]:
    return {
        "event_id": f"privacy-{uuid.uuid4().hex}",
        "user_id": user_id,
        "item_id": item_id,
        "type": kind,
        "timestamp": time.time(),
    }


def logged_events(settings: Settings) -> list[Event]:
    """Every event in the configured log (SQLite or Redis Stream)."""

    async def read_all() -> list[Event]:
        log = open_event_log(settings)
        try:
            found: list[Event] = []
            after = None
            while page := await log.iter_all(after):
                after = page[-1].position
                found.extend(logged.event for logged in page)
            return found
        finally:
            await log.close()

    return asyncio.run(read_all())


def batch_tables_holding(settings: Settings, user_id: str) -> list[str]:
    """Parquet files under the home's batch directories with a row of ``user_id``."""
    holding = []
    for directory in (settings.data_dir, settings.offline_dir, settings.event_parts_dir):
        for path in sorted(Path(directory).glob("*.parquet")):
            table = pq.read_table(path)
            if "user_id" in table.column_names and user_id in table.column("user_id").to_pylist():
                holding.append(str(path))
    return holding
