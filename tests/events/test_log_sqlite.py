"""What only the SQLite log has: its durability settings, surviving kill -9, and the factory."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.events.log import open_event_log
from app.events.log_sqlite import SqliteEventLog
from app.events.types import EventLogUnavailable
from app.settings import Settings
from tests.events.conftest import make_event

REPO_ROOT = Path(__file__).resolve().parents[2]
BATCH = 100

# argv: db path, id prefix, batch count. Appends batches of BATCH events with ids
# "<prefix><n>-<i>", printing "acked <n>" once batch n is acknowledged.
WRITER = f"""
import asyncio, sys, time
from pathlib import Path
from app.events.log_sqlite import SqliteEventLog
from app.events.types import Event

async def main():
    log = SqliteEventLog(Path(sys.argv[1]))
    prefix = sys.argv[2]
    for n in range(int(sys.argv[3])):
        batch = [Event(f"{{prefix}}{{n}}-{{i}}", "u", "i", "view", time.time())
                 for i in range({BATCH})]
        await log.append(batch)
        print("acked", n, flush=True)

asyncio.run(main())
"""


async def test_acknowledged_batches_survive_kill_9(sqlite_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(sqlite_path), "b", "1000000"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    last_acked = -1
    try:
        while last_acked < 5:
            line = child.stdout.readline()
            assert line.startswith("acked "), f"writer said {line!r}"
            last_acked = int(line.split()[1])
    finally:
        child.send_signal(signal.SIGKILL)  # mid-way through a later batch, most likely
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL

    log = SqliteEventLog(sqlite_path)
    stored = {logged.event.event_id for logged in await log.iter_all(limit=1_000_000)}
    await log.close()
    for n in range(last_acked + 1):
        assert {f"b{n}-{i}" for i in range(BATCH)} <= stored, f"acked batch {n} lost"
    assert len(stored) % BATCH == 0  # a batch is stored whole or not at all


async def test_several_processes_append_to_one_file(sqlite_path: Path) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(sqlite_path), f"w{w}-", "20"],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
        )
        for w in range(3)
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0, 0]
    log = SqliteEventLog(sqlite_path)
    stored = await log.iter_all(limit=10_000)
    await log.close()
    assert len(stored) == 3 * 20 * BATCH
    assert len({logged.event.event_id for logged in stored}) == len(stored)
    positions = [int(logged.position) for logged in stored]
    assert positions == sorted(set(positions))


async def test_file_is_in_wal_mode_with_full_sync(sqlite_path: Path) -> None:
    log = SqliteEventLog(sqlite_path)
    await log.append([make_event("e1")])
    # The pragmas are per connection: ask the log's own.
    journal, synchronous = await log._db.run(
        lambda c: (
            c.execute("PRAGMA journal_mode").fetchone(),
            c.execute("PRAGMA synchronous").fetchone(),
        )
    )
    assert journal == ("wal",)
    assert synchronous == (2,)  # 2 = FULL
    await log.close()


async def test_a_writer_holding_the_lock_past_busy_timeout_is_unavailable(
    sqlite_path: Path,
) -> None:
    log = SqliteEventLog(sqlite_path, busy_timeout_ms=50)
    await log.ping()
    other_process = sqlite3.connect(sqlite_path, isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(EventLogUnavailable, match=str(sqlite_path)):
            await log.append([make_event("e1")])
    finally:
        other_process.execute("ROLLBACK")
        other_process.close()
    assert (await log.append([make_event("e1")])).appended == ("e1",)  # nothing half-stored
    await log.close()


async def test_a_foreign_position_is_a_clear_error(sqlite_path: Path) -> None:
    log = SqliteEventLog(sqlite_path)
    with pytest.raises(ValueError, match="'1700000000000-0' is not a position"):
        await log.ack("g", ["1700000000000-0"])
    await log.close()


def test_factory_without_redis_opens_sqlite_under_home(tmp_path: Path) -> None:
    log = open_event_log(Settings(home=tmp_path))
    assert isinstance(log, SqliteEventLog)
    assert log.path == tmp_path / "events" / "events.db"
    assert not log.path.parent.exists()  # no I/O until first use
