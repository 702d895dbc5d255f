"""The consent store in PostgreSQL, the system of record shared by every host.

A change is one statement that merges the new choices into the stored ones (``jsonb ||``) as an
upsert, so two writers changing one user at once both land, and one insert into the history,
in the same transaction. Reads are primary-key lookups; every worker of every host reads the
table, so a change is visible everywhere as soon as it commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from psycopg.types.json import Jsonb

from app.privacy.consent import ConsentChange, ConsentRecord, ConsentUnavailable
from app.storage.postgres import PostgresDatabase


class PostgresConsentStore:
    """``ConsentStore`` in the records' schema; owns ``database``."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._db = database

    async def get(self, key: str) -> ConsentRecord | None:
        return (await self.get_many([key]))[key]

    async def get_many(self, keys: Sequence[str]) -> dict[str, ConsentRecord | None]:
        """One query for every key."""
        found: dict[str, ConsentRecord | None] = dict.fromkeys(keys)
        if not keys:
            return found
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "SELECT key, choices, updated_at FROM consent WHERE key = ANY(%s)", (list(found),)
            )
            for key, choices, updated_at in await cursor.fetchall():
                found[key] = ConsentRecord(choices, updated_at)
        return found

    async def record(self, key: str, changes: Mapping[str, bool], at: float) -> ConsentRecord:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "INSERT INTO consent (key, choices, updated_at) VALUES (%(k)s, %(c)s, %(at)s) "
                "ON CONFLICT (key) DO UPDATE SET choices = consent.choices || EXCLUDED.choices, "
                "updated_at = EXCLUDED.updated_at RETURNING choices",
                {"k": key, "c": Jsonb(dict(changes)), "at": at},
            )
            row = await cursor.fetchone()
            await connection.execute(
                "INSERT INTO consent_history (key, changes, at) VALUES (%s, %s, %s)",
                (key, Jsonb(dict(changes)), at),
            )
        if row is None:  # an upsert with RETURNING always returns its row
            raise ConsentUnavailable("postgres consent store: the upsert returned nothing")
        return ConsentRecord(row[0], at)

    async def history(self, key: str) -> list[ConsentChange]:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "SELECT changes, at FROM consent_history WHERE key = %s ORDER BY id", (key,)
            )
            rows = await cursor.fetchall()
        return [ConsentChange(changes, at) for changes, at in rows]

    async def erase(self, key: str) -> bool:
        async with self._db.transaction() as connection:
            current = await connection.execute("DELETE FROM consent WHERE key = %s", (key,))
            past = await connection.execute("DELETE FROM consent_history WHERE key = %s", (key,))
            return bool(current.rowcount or past.rowcount)

    async def ping(self) -> None:
        async with self._db.transaction() as connection:
            await connection.execute("SELECT 1")

    async def close(self) -> None:
        await self._db.close()


def unavailable(detail: str) -> ConsentUnavailable:
    """The store's error for a database that cannot be reached or refused the statement."""
    return ConsentUnavailable(f"postgres consent store {detail}")
