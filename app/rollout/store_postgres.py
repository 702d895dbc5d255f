"""The rollout record store in PostgreSQL (tables of migration ``0008``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from app.rollout.store import RolloutStoreUnavailable, Row, SqlRolloutStore


class PostgresRolloutStore(SqlRolloutStore):
    """``RolloutStore`` in the records' schema, one short connection per call."""

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

    def _run(self, query: str, params: Sequence[Any]) -> tuple[list[Row], int]:
        try:
            with psycopg.connect(
                self._url, connect_timeout=self._connect_timeout_seconds, options=self._options
            ) as connection:
                cursor = connection.execute(query.encode(), tuple(params))
                rows = cursor.fetchall() if cursor.description is not None else []
                return rows, cursor.rowcount
        except psycopg.Error as exc:
            raise RolloutStoreUnavailable(f"postgres rollout records: {exc}") from exc
