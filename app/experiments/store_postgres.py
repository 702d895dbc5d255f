"""``ExposureStore`` in PostgreSQL, the system of record shared by every host.

Same tables as the SQLite store (``exposures``, ``exposure_counted``, ``exposure_counts``,
``exposure_users``, ``exposure_unattributed``), same rules: a retried save of one
recommendation counts nothing (its primary key), a pair is counted once
(``exposure_counted``'s primary key decides between concurrent writers), expired exposures are
dropped by the next save, and erasing a user keeps the anonymous counters. Counters are
incremented in place, so concurrent writers on different hosts never lose an update.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg.types.json import Jsonb

from app.experiments.attribution import (
    Counter,
    Exposure,
    ExposureStoreUnavailable,
    Unattributed,
    VariantCounts,
    counts_from_rows,
)
from app.storage.postgres import PostgresDatabase

_EXPOSURE_COLUMNS = "recommendation_id, experiment_id, variant, user_key, positions, served_at"
ExposureRow = tuple[str, str, str, str, dict[str, int], str]

_COUNTS = """
SELECT c.variant, c.exposures, c.impressions, c.clicks, c.conversions,
       (SELECT count(*) FROM exposure_users u WHERE u.experiment_id = c.experiment_id
                                               AND u.variant = c.variant)
FROM exposure_counts c WHERE c.experiment_id = %s
"""


class PostgresExposureStore:
    """``ExposureStore`` in the records' schema; owns ``database``."""

    backend = "postgres"

    def __init__(self, database: PostgresDatabase) -> None:
        self._db = database

    async def save_exposure(self, exposure: Exposure, ttl: timedelta) -> None:
        """Insert the exposure and count it, unless its id is already stored; drop expired ones
        (judged by the newest exposure's time, as in the other stores)."""
        served_at = exposure.served_at.timestamp()
        key = (exposure.experiment_id, exposure.variant)
        async with self._db.transaction() as connection:
            await connection.execute(
                "WITH expired AS (DELETE FROM exposures WHERE expires_at < %s "
                "RETURNING recommendation_id) DELETE FROM exposure_counted "
                "WHERE recommendation_id IN (SELECT recommendation_id FROM expired)",
                (served_at,),
            )
            inserted = await connection.execute(
                "INSERT INTO exposures VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (
                    exposure.recommendation_id,
                    *key,
                    exposure.user_key,
                    Jsonb(exposure.positions),
                    exposure.served_at.isoformat(),  # exact, unlike a float timestamp
                    served_at + ttl.total_seconds(),
                ),
            )
            if inserted.rowcount:  # a retried write of the same id counts nothing
                await connection.execute(
                    "INSERT INTO exposure_counts (experiment_id, variant, exposures) "
                    "VALUES (%s, %s, 1) ON CONFLICT (experiment_id, variant) "
                    "DO UPDATE SET exposures = exposure_counts.exposures + 1",
                    key,
                )
                await connection.execute(
                    "INSERT INTO exposure_users VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    (*key, exposure.user_key),
                )

    async def find_exposure(self, recommendation_id: str) -> Exposure | None:
        """The stored exposure, or None when unknown or dropped."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                f"SELECT {_EXPOSURE_COLUMNS} FROM exposures WHERE recommendation_id = %s",
                (recommendation_id,),
            )
            row = await cursor.fetchone()
        return None if row is None else _exposure(row)

    async def count_once(self, exposure: Exposure, item_id: str, counter: Counter) -> bool:
        """Count ``counter`` for the pair unless already counted or the exposure is gone."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "INSERT INTO exposure_counted SELECT recommendation_id, %s, %s FROM exposures "
                "WHERE recommendation_id = %s ON CONFLICT DO NOTHING",
                (item_id, counter.value, exposure.recommendation_id),
            )
            counted = bool(cursor.rowcount)
            if counted:
                # The column name comes from the Counter enum, never from input.
                await connection.execute(
                    f"UPDATE exposure_counts SET {counter.value} = {counter.value} + 1 "
                    "WHERE experiment_id = %s AND variant = %s",
                    (exposure.experiment_id, exposure.variant),
                )
        return counted

    async def count_unattributed(self, exposure: Exposure, reason: Unattributed) -> None:
        """Count one event of the exposure's variant not attributed for ``reason``."""
        async with self._db.transaction() as connection:
            await connection.execute(
                "INSERT INTO exposure_unattributed VALUES (%s, %s, %s, 1) "
                "ON CONFLICT (experiment_id, variant, reason) "
                "DO UPDATE SET events = exposure_unattributed.events + 1",
                (exposure.experiment_id, exposure.variant, reason.value),
            )

    async def variant_counts(self, experiment_id: str) -> dict[str, VariantCounts]:
        """Counters of each variant of ``experiment_id``."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(_COUNTS, (experiment_id,))
            rows = await cursor.fetchall()
            cursor = await connection.execute(
                "SELECT variant, reason, events FROM exposure_unattributed "
                "WHERE experiment_id = %s",
                (experiment_id,),
            )
            unattributed = await cursor.fetchall()
        return counts_from_rows(rows, unattributed)

    async def exposures_of(self, user_key: str) -> list[Exposure]:
        """The user's stored exposures (expired ones until the next save drops them), oldest
        first."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                f"SELECT {_EXPOSURE_COLUMNS} FROM exposures WHERE user_key = %s", (user_key,)
            )
            rows = await cursor.fetchall()
        return sorted(map(_exposure, rows), key=lambda exposure: exposure.served_at)

    async def delete_user(self, user_key: str) -> int:
        """Delete the user's exposures, their counted pairs and their ``exposure_users`` rows."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "WITH gone AS (DELETE FROM exposures WHERE user_key = %s "
                "RETURNING recommendation_id), counted AS (DELETE FROM exposure_counted "
                "WHERE recommendation_id IN (SELECT recommendation_id FROM gone)) "
                "SELECT count(*) FROM gone",
                (user_key,),
            )
            row = await cursor.fetchone()
            await connection.execute("DELETE FROM exposure_users WHERE user_key = %s", (user_key,))
        return int(row[0]) if row else 0

    async def close(self) -> None:
        """Close the pool; the store must not be used afterwards."""
        await self._db.close()


def _exposure(row: ExposureRow) -> Exposure:
    recommendation_id, experiment_id, variant, user_key, positions, served_at = row
    return Exposure(
        recommendation_id=recommendation_id,
        experiment_id=experiment_id,
        variant=variant,
        user_key=user_key,
        positions=positions,
        served_at=datetime.fromisoformat(served_at),
    )


def unavailable(detail: str) -> ExposureStoreUnavailable:
    """The store's error for a database that cannot be reached or refused the statement."""
    return ExposureStoreUnavailable(f"postgres exposure store {detail}")
