"""The embedded ``ExposureStore``: one SQLite file in WAL mode, shared by every worker.

Used when no Redis is configured. An in-memory store would split the counters between uvicorn
workers (each report would see one worker's share) and lose them on every restart, so even a
single worker writes here: a report must survive a deploy.

``synchronous = NORMAL``: a commit is durable against a process crash, and a power cut may lose
the last few exposures, which shifts a report by a handful of units out of thousands; an fsync
per recommendation would cost more than the whole request.

Tables: ``exposures`` (one row per recommendation, dropped once expired), ``counted`` (the
``(recommendation, item, counter)`` pairs already counted, dropped with their exposure),
``counts`` (per-variant counters, kept forever), ``unattributed`` (per-variant events not
attributed, by reason, kept forever) and ``users`` (user pseudonyms per variant, for
the exact distinct-user count).

Erasing a user (``delete_user``) deletes their ``exposures`` (with their ``counted`` pairs) and
``users`` rows, overwritten on disk, so the variant's distinct-user count drops by one;
``counts`` stay as they are: anonymous totals that no longer say who they came from.

sqlite3 blocks, so each call runs in a worker thread on one connection guarded by a lock.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from app.experiments.attribution import (
    Counter,
    Exposure,
    ExposureStoreUnavailable,
    Unattributed,
    VariantCounts,
    counts_from_rows,
)
from app.infra.sqlite_file import SqliteFile, erase, transaction

# Ordered, oldest first: the n-th brings a file from schema version n-1 to n (sqlite_file).
MIGRATIONS = (
    # 1: the schema of files written before they carried a version
    """
CREATE TABLE IF NOT EXISTS exposures (
    recommendation_id TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    user_key TEXT NOT NULL,
    positions BLOB NOT NULL,
    served_at TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS exposures_by_expiry ON exposures (expires_at);
CREATE INDEX IF NOT EXISTS exposures_by_user ON exposures (user_key);
CREATE TABLE IF NOT EXISTS counted (
    recommendation_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    counter TEXT NOT NULL,
    PRIMARY KEY (recommendation_id, item_id, counter)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counts (
    experiment_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    exposures INTEGER NOT NULL DEFAULT 0,
    impressions INTEGER NOT NULL DEFAULT 0,
    clicks INTEGER NOT NULL DEFAULT 0,
    conversions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, variant)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users (
    experiment_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    user_key TEXT NOT NULL,
    PRIMARY KEY (experiment_id, variant, user_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS users_by_user ON users (user_key);
CREATE TABLE IF NOT EXISTS unattributed (
    experiment_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    reason TEXT NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (experiment_id, variant, reason)
) WITHOUT ROWID;
""",
)

_EXPOSURE_COLUMNS = "recommendation_id, experiment_id, variant, user_key, positions, served_at"
ExposureRow = tuple[str, str, str, str, bytes, str]

_COUNTS = """
SELECT c.variant, c.exposures, c.impressions, c.clicks, c.conversions,
       (SELECT count(*) FROM users u WHERE u.experiment_id = c.experiment_id
                                      AND u.variant = c.variant)
FROM counts c WHERE c.experiment_id = ?
"""


class SqliteExposureStore:
    """``ExposureStore`` in one local file; the file and its directory are created on first use."""

    backend = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._db = SqliteFile(
            path,
            migrations=MIGRATIONS,
            busy_timeout_ms=busy_timeout_ms,
            synchronous="NORMAL",
            unavailable=lambda detail: ExposureStoreUnavailable(f"sqlite exposure store {detail}"),
        )

    async def save_exposure(self, exposure: Exposure, ttl: timedelta) -> None:
        """Insert the exposure and count it, unless its id is already stored; drop expired ones."""
        await self._db.run(lambda c: _save(c, exposure, ttl))

    async def find_exposure(self, recommendation_id: str) -> Exposure | None:
        """The stored exposure, or None when unknown or dropped."""
        row: ExposureRow | None = await self._db.run(
            lambda c: c.execute(
                f"SELECT {_EXPOSURE_COLUMNS} FROM exposures WHERE recommendation_id = ?",
                (recommendation_id,),
            ).fetchone()
        )
        return None if row is None else _exposure(row)

    async def count_once(self, exposure: Exposure, item_id: str, counter: Counter) -> bool:
        """Count ``counter`` for the pair unless already counted or the exposure is gone."""
        return await self._db.run(lambda c: _count_once(c, exposure, item_id, counter))

    async def count_unattributed(self, exposure: Exposure, reason: Unattributed) -> None:
        """Count one event of the exposure's variant not attributed for ``reason``."""
        await self._db.run(
            lambda c: _increment_unattributed(
                c, (exposure.experiment_id, exposure.variant, reason.value)
            )
        )

    async def variant_counts(self, experiment_id: str) -> dict[str, VariantCounts]:
        """Counters of each variant of ``experiment_id``."""
        rows, unattributed = await self._db.run(
            lambda c: (
                c.execute(_COUNTS, (experiment_id,)).fetchall(),
                c.execute(
                    "SELECT variant, reason, events FROM unattributed WHERE experiment_id = ?",
                    (experiment_id,),
                ).fetchall(),
            )
        )
        return counts_from_rows(rows, unattributed)

    async def exposures_of(self, user_key: str) -> list[Exposure]:
        """The user's stored exposures (expired ones until the next save drops them), oldest
        first."""
        rows: list[ExposureRow] = await self._db.run(
            lambda c: c.execute(
                f"SELECT {_EXPOSURE_COLUMNS} FROM exposures WHERE user_key = ?", (user_key,)
            ).fetchall()
        )
        return sorted(map(_exposure, rows), key=lambda exposure: exposure.served_at)

    async def delete_user(self, user_key: str) -> int:
        """Delete the user's exposures, their counted pairs and their ``users`` rows."""
        return await self._db.run(lambda c: _delete_user(c, user_key))

    async def close(self) -> None:
        """Close the connection; the store must not be used afterwards."""
        await self._db.close()


def _save(connection: sqlite3.Connection, exposure: Exposure, ttl: timedelta) -> None:
    served_at = exposure.served_at.timestamp()
    key = (exposure.experiment_id, exposure.variant)
    with transaction(connection):
        # Expiry is judged by the newest exposure's time, as in the in-memory store.
        connection.execute(
            "DELETE FROM counted WHERE recommendation_id IN"
            " (SELECT recommendation_id FROM exposures WHERE expires_at < ?)",
            (served_at,),
        )
        connection.execute("DELETE FROM exposures WHERE expires_at < ?", (served_at,))
        inserted = connection.execute(
            "INSERT OR IGNORE INTO exposures VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                exposure.recommendation_id,
                *key,
                exposure.user_key,
                orjson.dumps(exposure.positions),
                exposure.served_at.isoformat(),  # exact, unlike a float timestamp
                served_at + ttl.total_seconds(),
            ),
        ).rowcount
        if inserted:  # a retried write of the same id counts nothing
            connection.execute(
                "INSERT INTO counts (experiment_id, variant, exposures) VALUES (?, ?, 1)"
                " ON CONFLICT (experiment_id, variant) DO UPDATE SET exposures = exposures + 1",
                key,
            )
            connection.execute(
                "INSERT OR IGNORE INTO users VALUES (?, ?, ?)", (*key, exposure.user_key)
            )


def _increment_unattributed(connection: sqlite3.Connection, key: tuple[str, str, str]) -> None:
    with transaction(connection):
        connection.execute(
            "INSERT INTO unattributed VALUES (?, ?, ?, 1) ON CONFLICT"
            " (experiment_id, variant, reason) DO UPDATE SET events = events + 1",
            key,
        )


def _count_once(
    connection: sqlite3.Connection, exposure: Exposure, item_id: str, counter: Counter
) -> bool:
    with transaction(connection):
        known = connection.execute(
            "SELECT 1 FROM exposures WHERE recommendation_id = ?", (exposure.recommendation_id,)
        ).fetchone()
        counted = bool(
            known
            and connection.execute(
                "INSERT OR IGNORE INTO counted VALUES (?, ?, ?)",
                (exposure.recommendation_id, item_id, counter.value),
            ).rowcount
        )
        if counted:
            # The column name comes from the Counter enum, never from input.
            connection.execute(
                f"UPDATE counts SET {counter.value} = {counter.value} + 1"
                " WHERE experiment_id = ? AND variant = ?",
                (exposure.experiment_id, exposure.variant),
            )
    return counted


def _delete_user(connection: sqlite3.Connection, user_key: str) -> int:
    def delete(c: sqlite3.Connection) -> int:
        c.execute(
            "DELETE FROM counted WHERE recommendation_id IN"
            " (SELECT recommendation_id FROM exposures WHERE user_key = ?)",
            (user_key,),
        )
        deleted = c.execute("DELETE FROM exposures WHERE user_key = ?", (user_key,)).rowcount
        c.execute("DELETE FROM users WHERE user_key = ?", (user_key,))
        return int(deleted)

    return erase(connection, delete)


def _exposure(row: ExposureRow) -> Exposure:
    recommendation_id, experiment_id, variant, user_key, positions, served_at = row
    return Exposure(
        recommendation_id=recommendation_id,
        experiment_id=experiment_id,
        variant=variant,
        user_key=user_key,
        positions=orjson.loads(positions),
        served_at=datetime.fromisoformat(served_at),
    )
