"""A store's pool of connections to PostgreSQL, used from asyncio.

The pool is built with the store at start-up and opened on first use (it needs the running
event loop). Every connection is pinned to the records' schema (``search_path``) and carries a
``statement_timeout``; taking a connection waits at most ``pool_timeout_seconds``. So no call
of a store can hang on the database: it fails with the store's own "unavailable" error, which
the API answers with 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from app.settings import DatabaseSettings, Settings

Connection = psycopg.AsyncConnection[tuple[Any, ...]]


class PostgresDatabase:
    """The pool of one store. ``unavailable`` turns a driver or pool error into the store's own
    error, given a message that names the database (never its password)."""

    def __init__(
        self,
        url: str,
        *,
        schema: str,
        unavailable: Callable[[str], Exception],
        min_size: int = 1,
        max_size: int = 8,
        pool_timeout_seconds: float = 2.0,
        connect_timeout_seconds: int = 2,
        statement_timeout_ms: int = 2000,
    ) -> None:
        self.schema = schema
        self._unavailable = unavailable
        self._where = _describe(url)
        self._pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=pool_timeout_seconds,
            open=False,
            kwargs={
                "connect_timeout": connect_timeout_seconds,
                "options": f"-c search_path={schema} -c statement_timeout={statement_timeout_ms}",
            },
        )
        self._opened = False
        self._open_lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A pooled connection inside one transaction: committed when the block ends, rolled
        back when it raises."""
        try:
            await self._open()
            async with self._pool.connection() as connection:
                yield connection
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            raise self._unavailable(f"{self._where}: {exc}") from exc

    async def close(self) -> None:
        """Close every connection; a later call would fail."""
        await self._pool.close()

    async def _open(self) -> None:
        if self._opened:
            return
        async with self._open_lock:
            if not self._opened:
                # wait=False: an absent server makes the first call fail, not the start-up hang.
                await self._pool.open(wait=False)
                self._opened = True


def database_from_settings(
    settings: Settings, unavailable: Callable[[str], Exception]
) -> PostgresDatabase:
    """The pool ``settings.database_url`` and ``settings.database`` describe."""
    if settings.database_url is None:
        raise ValueError("PostgreSQL stores need RECSERVE_DATABASE_URL")
    config: DatabaseSettings = settings.database
    return PostgresDatabase(
        settings.database_url.get_secret_value(),
        schema=config.schema_name,
        unavailable=unavailable,
        min_size=config.pool_min_size,
        max_size=config.pool_max_size,
        pool_timeout_seconds=config.pool_timeout_seconds,
        connect_timeout_seconds=config.connect_timeout_seconds,
        statement_timeout_ms=config.statement_timeout_ms,
    )


def short_connections_from_settings(settings: Settings) -> ShortConnections:
    """The short connections ``settings.database_url`` and ``settings.database`` describe."""
    if settings.database_url is None:
        raise ValueError("PostgreSQL stores need RECSERVE_DATABASE_URL")
    return ShortConnections(
        settings.database_url.get_secret_value(),
        schema=settings.database.schema_name,
        connect_timeout_seconds=settings.database.connect_timeout_seconds,
        statement_timeout_ms=settings.database.statement_timeout_ms,
    )


def _describe(url: str) -> str:
    """Host, port and database of ``url``, for messages: the password stays out of logs."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host, port = info.get("host", "localhost"), info.get("port", 5432)
    return f"postgresql {host}:{port}/{info.get('dbname', '')}"


class ShortConnections:
    """Blocking calls, each on a connection of its own, pinned to the records' schema with a
    ``statement_timeout``: for stores touched a few times a minute (admin operations, jobs),
    where a pool would hold connections for nothing. Raises ``psycopg.Error``."""

    def __init__(
        self,
        url: str,
        *,
        schema: str,
        connect_timeout_seconds: int = 2,
        statement_timeout_ms: int = 2000,
    ) -> None:
        self._url = url
        self._options = f"-c search_path={schema} -c statement_timeout={statement_timeout_ms}"
        self._connect_timeout_seconds = connect_timeout_seconds

    def run(self, query: str, params: Sequence[Any]) -> tuple[list[tuple[Any, ...]], int]:
        """``query`` in its own transaction: the rows it returns (none for a write) and the
        rows it changed."""
        with psycopg.connect(
            self._url, connect_timeout=self._connect_timeout_seconds, options=self._options
        ) as connection:
            cursor = connection.execute(query.encode(), tuple(params))
            rows = cursor.fetchall() if cursor.description is not None else []
            return rows, cursor.rowcount
