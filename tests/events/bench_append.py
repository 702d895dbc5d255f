"""Manual benchmark (not collected by pytest): append throughput and per-batch ack latency,
then the throughput of one consumer reading and acking everything back.

    .venv/bin/python -m tests.events.bench_append --backend sqlite --batches 500
    .venv/bin/python -m tests.events.bench_append --backend redis --concurrency 4
    .venv/bin/python -m tests.events.bench_append --backend postgres --concurrency 4
    .venv/bin/python -m tests.events.bench_append --backend nats --concurrency 4

One process, ``concurrency`` appends in flight (as a uvicorn worker with concurrent requests).
SQLite writes to a temp dir; Redis to a unique stream key on RECSERVE_TEST_REDIS_URL;
PostgreSQL to a schema of its own on RECSERVE_TEST_DATABASE_URL; NATS to a stream of its own on
RECSERVE_TEST_NATS_URL; each deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from redis.asyncio import Redis

from app.events.log import EventLog
from app.events.log_nats import NatsEventLog
from app.events.log_postgres import PostgresEventLog, unavailable
from app.events.log_redis import RedisEventLog
from app.events.log_sqlite import SqliteEventLog
from app.events.types import Event
from app.storage.postgres import PostgresDatabase, upgrade
from tests.conftest import TEST_DATABASE_URL
from tests.events.conftest import NATS_URL, REDIS_URL, delete_nats_stream

READ_PAGE = 500


async def measure(log: EventLog, batches: int, batch_size: int, concurrency: int) -> None:
    """Append ``batches`` batches, ``concurrency`` at a time; print events/s and latencies."""
    latencies: list[float] = []
    queue = list(range(batches))

    async def worker() -> None:
        while queue:
            n = queue.pop()
            now = time.time()
            batch = [
                Event(f"{n}-{i}", f"u{i % 50}", f"i{i}", "view", now, None, {"page": "home"})
                for i in range(batch_size)
            ]
            started = time.perf_counter()
            await log.append(batch)
            latencies.append(time.perf_counter() - started)

    await log.append([Event("warm-up", "u", "i", "view", time.time())])
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"{log.backend}: {batches} batches x {batch_size}, concurrency {concurrency}: "
        f"{batches * batch_size / elapsed:,.0f} events/s; per batch p50 "
        f"{statistics.median(latencies) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
        f"max {latencies[-1] * 1000:.2f} ms"
    )
    started, read = time.perf_counter(), 0
    while page := await log.read("bench", "c", count=READ_PAGE, block_ms=0):
        await log.ack("bench", [entry.position for entry in page])
        read += len(page)
    elapsed = time.perf_counter() - started
    print(
        f"{log.backend}: read and acked {read} events in pages of {READ_PAGE}: "
        f"{read / elapsed:,.0f} events/s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--backend", choices=["sqlite", "redis", "postgres", "nats"], default="sqlite"
    )
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as home:
            log: EventLog = SqliteEventLog(Path(home) / "events.db")
            await measure(log, args.batches, args.batch_size, args.concurrency)
            await log.close()
        return
    if args.backend == "postgres":
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        await asyncio.to_thread(upgrade, TEST_DATABASE_URL, schema)
        database = PostgresDatabase(TEST_DATABASE_URL, schema=schema, unavailable=unavailable)
        log = PostgresEventLog(database)
        try:
            await measure(log, args.batches, args.batch_size, args.concurrency)
        finally:
            await log.close()
            with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        return
    if args.backend == "nats":
        stream = f"BENCH_{uuid.uuid4().hex}"
        log = NatsEventLog(
            NATS_URL,
            stream=stream,
            dedupe_window_seconds=3600,
            ack_wait_seconds=60,
            timeout_seconds=5,
        )
        try:
            await measure(log, args.batches, args.batch_size, args.concurrency)
        finally:
            await log.close()
            await delete_nats_stream(NATS_URL, stream)
        return
    stream_key = f"bench:events:{uuid.uuid4().hex}"
    log = RedisEventLog(
        Redis.from_url(REDIS_URL, socket_timeout=1.0),
        stream_key=stream_key,
        dedupe_window_seconds=3600,
    )
    try:
        await measure(log, args.batches, args.batch_size, args.concurrency)
    finally:
        admin = Redis.from_url(REDIS_URL)
        keys = [key async for key in admin.scan_iter(match=f"{stream_key}*", count=10_000)]
        for start in range(0, len(keys), 10_000):
            await admin.delete(*keys[start : start + 10_000])
        await admin.aclose()
        await log.close()


if __name__ == "__main__":
    asyncio.run(main())
