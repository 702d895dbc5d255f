"""Availability overrides in PostgreSQL, shared by every worker of every host.

A write bumps the one-row change counter (its row lock orders concurrent writers) and upserts
the override in the same transaction; a poll reads the counter alone unless it moved.
"""

from __future__ import annotations

from app.serving.catalogue.availability import AvailabilityStoreError
from app.serving.catalogue.items import Availability
from app.storage.postgres import PostgresDatabase


class PostgresAvailabilityStore:
    """``AvailabilityStore`` in the records' schema; owns ``database``."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._db = database

    async def put(self, item_id: str, availability: Availability) -> int:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "INSERT INTO availability_generation (value) VALUES (1) ON CONFLICT (singleton) "
                "DO UPDATE SET value = availability_generation.value + 1 RETURNING value"
            )
            row = await cursor.fetchone()
            generation = int(row[0]) if row else 0
            await connection.execute(
                "INSERT INTO availability_overrides VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (item_id) DO UPDATE SET hidden = EXCLUDED.hidden, "
                "in_stock = EXCLUDED.in_stock, generation = EXCLUDED.generation",
                (item_id, availability.hidden, availability.in_stock, generation),
            )
        return generation

    async def changes_since(self, generation: int) -> tuple[int, dict[str, Availability]] | None:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "SELECT coalesce((SELECT value FROM availability_generation), 0)"
            )
            row = await cursor.fetchone()
            current = int(row[0]) if row else 0
            if current == generation:
                return None
            cursor = await connection.execute(
                "SELECT item_id, hidden, in_stock FROM availability_overrides"
            )
            rows = await cursor.fetchall()
        return current, {
            item_id: Availability(hidden, in_stock) for item_id, hidden, in_stock in rows
        }

    async def close(self) -> None:
        await self._db.close()


def unavailable(detail: str) -> AvailabilityStoreError:
    """The store's error for a database that cannot be reached or refused the statement."""
    return AvailabilityStoreError(f"postgres availability store {detail}")
