"""The load a phase puts on the shared stores, per 1,000 answered requests: Redis commands by
name (``INFO commandstats``) and PostgreSQL transactions and rows (``pg_stat_database``).

Both are server-wide counters, so the stores must serve the benchmark alone (a Redis and a
PostgreSQL of its own) for the figures to mean anything. PostgreSQL backends publish their
counts at most once a second while busy: over a phase of ten seconds or more that follows a
warm-up at the same load, what is still unpublished at the start and at the end cancels out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg
import redis

# Counters by name, read now.
Counters = Callable[[], dict[str, float]]

POSTGRES_COLUMNS = ("xact_commit", "xact_rollback", "tup_fetched", "tup_inserted", "tup_updated")


def redis_commands(url: str) -> Counters:
    """Calls of each command the Redis server at ``url`` has answered since it started."""
    client = redis.Redis.from_url(url)

    def read() -> dict[str, float]:
        stats: dict[str, dict[str, int]] = client.info("commandstats")  # type: ignore[assignment]
        return {
            f"redis {name.removeprefix('cmdstat_')}": float(fields["calls"])
            for name, fields in stats.items()
            if name != "cmdstat_info"  # this reading's own
        }

    return read


def postgres_activity(url: str) -> Counters:
    """Transactions and rows of the database at ``url`` (``pg_stat_database``)."""

    def read() -> dict[str, float]:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("SELECT pg_stat_clear_snapshot()")
            row = connection.execute(
                f"SELECT {', '.join(POSTGRES_COLUMNS)} FROM pg_stat_database "
                "WHERE datname = current_database()"
            ).fetchone()
        assert row is not None  # the database we are connected to is listed
        return {
            f"postgres {name}": float(value)
            for name, value in zip(POSTGRES_COLUMNS, row, strict=True)
        }

    return read


def every(counters: Sequence[Counters]) -> Counters:
    """All of ``counters`` in one reading."""
    return lambda: {name: value for read in counters for name, value in read().items()}


def per_thousand(
    before: dict[str, float], after: dict[str, float], requests: int
) -> dict[str, float]:
    """How much each counter grew per 1,000 of ``requests``, the counters that grew only,
    largest first."""
    grown = {name: value - before.get(name, 0.0) for name, value in after.items()}
    return {
        name: round(1000 * delta / requests, 1)
        for name, delta in sorted(grown.items(), key=lambda item: -item[1])
        if delta > 0
    }
