"""What only the PostgreSQL event log does: retention by dropping daily partitions, appends from
concurrent writers that a group's high-water mark never skips, and a bounded failure when the
database is away."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from app.cli import main
from app.events.log_postgres import PostgresEventLog, unavailable
from app.events.types import EventLogUnavailable
from app.storage.postgres import PostgresDatabase
from tests.conftest import POSTGRES_MARKS, TEST_DATABASE_URL, postgres_database
from tests.events.conftest import make_event

pytestmark = POSTGRES_MARKS


@pytest.fixture
async def log(postgres_empty_schema: str) -> AsyncIterator[PostgresEventLog]:
    opened = PostgresEventLog(postgres_database(postgres_empty_schema, unavailable))
    yield opened
    await opened.close()


def partitions(schema: str) -> set[str]:
    with psycopg.connect(TEST_DATABASE_URL) as connection:
        rows = connection.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            (f'"{schema}".events',),
        ).fetchall()
    return {row[0] for row in rows}


async def test_retention_drops_whole_days_with_their_ids_and_pending_entries(
    log: PostgresEventLog, postgres_empty_schema: str
) -> None:
    await log.append([make_event("old"), make_event("new")])
    assert [e.event.event_id for e in await log.read("g", "c", count=1, block_ms=0)] == ["old"]
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    with psycopg.connect(TEST_DATABASE_URL) as connection:
        # Back-date "old" (the row moves to yesterday's partition) as if appended then.
        for table in ("events", "event_ids"):
            connection.execute(
                f'UPDATE "{postgres_empty_schema}".{table} SET appended_at = %s '
                "WHERE event_id = 'old'",
                (dt.datetime.combine(yesterday, dt.time(12), dt.UTC),),
            )
    name = f"events_{yesterday:%Y%m%d}"
    assert name in partitions(postgres_empty_schema)

    dropped = await log.drop_days_before(dt.datetime.now(dt.UTC).date())

    assert dropped == [name]
    assert name not in partitions(postgres_empty_schema)
    assert [e.event.event_id for e in await log.iter_all()] == ["new"]
    assert await log.lag("g") == 1  # "old" was pending: its entry went with the partition
    assert (await log.append([make_event("old")])).appended == ("old",)  # its id is forgotten


async def test_the_retention_command_keeps_the_days_asked_for(
    log: PostgresEventLog,
    postgres_empty_schema: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await log.append([make_event("e1")])  # creates yesterday's to next week's partitions
    monkeypatch.setenv("RECSERVE_DATABASE_URL", TEST_DATABASE_URL)
    monkeypatch.setenv("RECSERVE_DATABASE__SCHEMA_NAME", postgres_empty_schema)
    yesterday = f"events_{dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1):%Y%m%d}"

    assert await asyncio.to_thread(main, ["db", "retain-events", "--days", "1"]) == 0
    assert yesterday in partitions(postgres_empty_schema)
    assert await asyncio.to_thread(main, ["db", "retain-events", "--days", "0"]) == 0
    assert yesterday not in partitions(postgres_empty_schema)
    assert capsys.readouterr().out.splitlines() == [
        "dropped 0 partitions",
        f"dropped 1 partitions: {yesterday}",
    ]
    assert [e.event.event_id for e in await log.iter_all()] == ["e1"]  # today's stay


async def test_concurrent_writers_never_leave_a_gap_behind_a_groups_mark(
    postgres_empty_schema: str,
) -> None:
    writers = [
        PostgresEventLog(postgres_database(postgres_empty_schema, unavailable)) for _ in range(4)
    ]
    reader = PostgresEventLog(postgres_database(postgres_empty_schema, unavailable))
    seen: list[str] = []

    async def write(n: int, writer: PostgresEventLog) -> None:
        for batch in range(10):
            await writer.append([make_event(f"w{n}-{batch}-{k}") for k in range(5)])

    async def consume_until_done(task: asyncio.Future[list[None]]) -> None:
        while not task.done() or await reader.lag("g"):
            got = await reader.read("g", "c", count=50, block_ms=20)
            seen.extend(entry.event.event_id for entry in got)
            await reader.ack("g", [entry.position for entry in got])

    writing = asyncio.gather(*(write(n, w) for n, w in enumerate(writers)))
    await consume_until_done(writing)
    for log in [*writers, reader]:
        await log.close()
    assert len(seen) == len(set(seen)) == 4 * 10 * 5


async def test_an_unreachable_database_fails_fast_with_the_logs_error() -> None:
    # A port nothing listens on: the pool's timeout bounds the wait.
    database = PostgresDatabase(
        "postgresql://postgres@127.0.0.1:9/test",
        schema="absent",
        unavailable=unavailable,
        pool_timeout_seconds=0.5,
        connect_timeout_seconds=1,
    )
    log = PostgresEventLog(database)
    started = time.perf_counter()
    with pytest.raises(EventLogUnavailable, match=re.escape("postgresql 127.0.0.1:9/test")):
        await log.append([make_event("e1")])
    assert time.perf_counter() - started < 1.5
    await log.close()
