"""The embedded consent store: one SQLite file (WAL, ``synchronous=FULL``) under the home.

Reads are on the request path, so ``get`` runs inline on the event loop on a connection of its
own: a primary-key lookup in WAL mode takes microseconds and never waits for a writer, which is
cheaper than a hop to a thread. Writes fsync, so they run in a worker thread on a second
connection. Every worker of a host reads the file itself, so a change is visible to all of them
at once. Each worker keeps the records it read (an LRU) for as long as SQLite's
``PRAGMA data_version`` on its read connection stays the same: that number changes whenever
any other connection (another worker's, or this store's own writer) commits to the file, so a
consent change anywhere empties every worker's copy before its next read, at the price of a
pragma (4 µs alone; in a request, with its read transaction's three system calls, nearer 40 µs
in ``loadtests.engine_loop``) instead of a query (~20 µs alone) per request.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
from cachetools import LRUCache

from app.infra.sqlite_file import SqliteFile, erase, transaction
from app.privacy.consent import ConsentChange, ConsentRecord, ConsentUnavailable

# Ordered, oldest first: the n-th brings a file from schema version n-1 to n (sqlite_file).
MIGRATIONS = (
    # 1: the schema of files written before they carried a version
    """
CREATE TABLE IF NOT EXISTS consent (
    key TEXT PRIMARY KEY,
    choices BLOB NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consent_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    changes BLOB NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS consent_history_by_key ON consent_history (key, id);
""",
)
CONSENT_FILE = "consent.db"  # under ``Settings.privacy_dir``
# A reader in WAL mode waits only while a checkpoint resets the log: briefly.
READ_BUSY_TIMEOUT_SECONDS = 0.05


class SqliteConsentStore:
    """``ConsentStore`` in one local file, created with its directory on first use."""

    def __init__(
        self, path: Path, *, busy_timeout_ms: int = 5000, cache_max_entries: int = 100_000
    ) -> None:
        self.path = path
        self._reader: sqlite3.Connection | None = None
        self._known: LRUCache[str, ConsentRecord | None] = LRUCache(max(cache_max_entries, 1))
        self._known_version: int | None = None  # data_version the cached records were read at
        self._writer = SqliteFile(  # writes (and history reads) on a worker thread
            path,
            migrations=MIGRATIONS,
            busy_timeout_ms=busy_timeout_ms,
            synchronous="FULL",
            unavailable=lambda detail: ConsentUnavailable(f"sqlite consent store {detail}"),
        )

    async def get(self, key: str) -> ConsentRecord | None:
        """Inline primary-key read (see the module docstring)."""
        return (await self.get_many([key]))[key]

    async def get_many(self, keys: Sequence[str]) -> dict[str, ConsentRecord | None]:
        """Inline primary-key reads: records unchanged since this worker read them from its
        cache, the rest in one query."""
        found: dict[str, ConsentRecord | None] = dict.fromkeys(keys)
        if not keys:
            return found
        try:
            if self._reader is None:
                self._reader = self._writer.connect(READ_BUSY_TIMEOUT_SECONDS)
            (version,) = self._reader.execute("PRAGMA data_version").fetchone()
            if version != self._known_version:
                self._known.clear()
                self._known_version = version
            known = self._known
            missing = [key for key in found if key not in known]
            rows = (
                self._reader.execute(
                    "SELECT key, choices, updated_at FROM consent "
                    f"WHERE key IN ({','.join('?' * len(missing))})",
                    missing,
                ).fetchall()
                if missing
                else []
            )
        except (sqlite3.Error, OSError) as exc:
            raise ConsentUnavailable(f"sqlite consent store {self.path}: {exc}") from exc
        for key in missing:
            known[key] = None
        for key, choices, updated_at in rows:
            known[key] = ConsentRecord(orjson.loads(choices), updated_at)
        for key in found:
            found[key] = known[key]
        return found

    async def record(self, key: str, changes: Mapping[str, bool], at: float) -> ConsentRecord:
        def write(connection: sqlite3.Connection) -> ConsentRecord:
            with transaction(connection):
                row = connection.execute(
                    "SELECT choices FROM consent WHERE key = ?", (key,)
                ).fetchone()
                merged = {**(orjson.loads(row[0]) if row else {}), **changes}
                connection.execute(
                    "INSERT OR REPLACE INTO consent (key, choices, updated_at) VALUES (?, ?, ?)",
                    (key, orjson.dumps(merged), at),
                )
                connection.execute(
                    "INSERT INTO consent_history (key, changes, at) VALUES (?, ?, ?)",
                    (key, orjson.dumps(dict(changes)), at),
                )
            return ConsentRecord(merged, at)

        return await self._writer.run(write)

    async def history(self, key: str) -> list[ConsentChange]:
        def read(connection: sqlite3.Connection) -> list[ConsentChange]:
            rows = connection.execute(
                "SELECT changes, at FROM consent_history WHERE key = ? ORDER BY id", (key,)
            ).fetchall()
            return [ConsentChange(orjson.loads(changes), at) for changes, at in rows]

        return await self._writer.run(read)

    async def erase(self, key: str) -> bool:
        def delete(connection: sqlite3.Connection) -> bool:
            current = connection.execute("DELETE FROM consent WHERE key = ?", (key,)).rowcount
            past = connection.execute("DELETE FROM consent_history WHERE key = ?", (key,)).rowcount
            return bool(current or past)

        return await self._writer.run(lambda connection: erase(connection, delete))

    async def ping(self) -> None:
        await self.get("")

    async def close(self) -> None:
        await self._writer.close()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
