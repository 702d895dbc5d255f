"""Item availability overrides (hidden, out of stock) changed at run time, without a rebuild.

``PUT /items/{id}/availability`` writes an override here; every worker polls the store at
most once per ``refresh_seconds`` and applies what changed. Each write bumps a generation
number, so a poll that finds the same generation reads nothing else, and the generation goes
into recommendation cache keys: a change makes every worker's cached lists miss.

Backends: SQLite (``HOME/catalogue/availability.db``, shared by the workers of one host),
with ``RECSERVE_REDIS_URL`` a Redis hash plus a counter (shared by every host), and with
``RECSERVE_DATABASE_URL`` two PostgreSQL tables (``availability_postgres``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable
from pathlib import Path
from typing import Protocol, cast

import orjson
from redis.exceptions import RedisError

from app.infra.redis_client import RedisClient, register_script, slot_tag
from app.serving.catalogue.items import Availability

# KEYS: overrides hash, generation counter. ARGV: item id, override JSON. Returns the generation.
_PUT_SCRIPT = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2])
"""


class AvailabilityStoreError(RuntimeError):
    """The store cannot be read or written."""


class AvailabilityStore(Protocol):
    async def put(self, item_id: str, availability: Availability) -> int:
        """Replace the item's override; returns the new generation."""
        ...

    async def changes_since(self, generation: int) -> tuple[int, dict[str, Availability]] | None:
        """``None`` when nothing changed since ``generation``; else the current generation
        and every override."""
        ...

    async def close(self) -> None: ...


class SqliteAvailabilityStore:
    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection per process, used from the event loop thread only. Calls block the
        # loop briefly: a local write of one row, or a poll at most once per refresh period.
        self._db = sqlite3.connect(
            path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS overrides (item_id TEXT PRIMARY KEY, hidden INTEGER, "
            "in_stock INTEGER, generation INTEGER NOT NULL)"
        )

    async def put(self, item_id: str, availability: Availability) -> int:
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                (generation,) = self._db.execute(
                    "SELECT coalesce(max(generation), 0) + 1 FROM overrides"
                ).fetchone()
                self._db.execute(
                    "INSERT OR REPLACE INTO overrides VALUES (?, ?, ?, ?)",
                    (item_id, availability.hidden, availability.in_stock, generation),
                )
        except sqlite3.Error as exc:
            raise AvailabilityStoreError(f"availability store write failed: {exc}") from exc
        return int(generation)

    async def changes_since(self, generation: int) -> tuple[int, dict[str, Availability]] | None:
        try:
            (current,) = self._db.execute(
                "SELECT coalesce(max(generation), 0) FROM overrides"
            ).fetchone()
            if current == generation:
                return None
            rows = self._db.execute("SELECT item_id, hidden, in_stock FROM overrides").fetchall()
        except sqlite3.Error as exc:
            raise AvailabilityStoreError(f"availability store read failed: {exc}") from exc
        return int(current), {
            item_id: Availability(_flag(hidden), _flag(in_stock))
            for item_id, hidden, in_stock in rows
        }

    async def close(self) -> None:
        self._db.close()


class RedisAvailabilityStore:
    """``KEY`` hash of item id -> JSON override, ``KEY:generation`` counter (on a cluster
    ``{KEY}`` and ``{KEY}:generation``, one slot, so one script writes both)."""

    def __init__(self, client: RedisClient, key: str = "recserve:availability") -> None:
        self._client = client
        self._key = slot_tag(client, key)
        self._generation_key = f"{self._key}:generation"
        self._put = register_script(client, _PUT_SCRIPT)

    async def put(self, item_id: str, availability: Availability) -> int:
        value = orjson.dumps(
            {"hidden": availability.hidden, "in_stock": availability.in_stock}
        ).decode()
        try:
            generation = await self._put(
                keys=[self._key, self._generation_key], args=[item_id, value]
            )
        except RedisError as exc:
            raise AvailabilityStoreError(f"availability store write failed: {exc}") from exc
        return int(generation)

    async def changes_since(self, generation: int) -> tuple[int, dict[str, Availability]] | None:
        try:
            current = int(await self._client.get(self._generation_key) or 0)
            if current == generation:
                return None
            # redis-py types commands for sync and asyncio clients alike; this one awaits.
            raw = await cast("Awaitable[dict[bytes, bytes]]", self._client.hgetall(self._key))
        except RedisError as exc:
            raise AvailabilityStoreError(f"availability store read failed: {exc}") from exc
        overrides = {}
        for item_id, value in raw.items():
            data = orjson.loads(value)
            overrides[item_id.decode()] = Availability(data["hidden"], data["in_stock"])
        return current, overrides

    async def close(self) -> None:
        await self._client.aclose()


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)
