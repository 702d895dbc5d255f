"""The rollout record store in PostgreSQL (tables of migration ``0008``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from app.rollout.store import RolloutStoreUnavailable, Row, SqlRolloutStore
from app.storage.postgres import ShortConnections


class PostgresRolloutStore(SqlRolloutStore):
    """``RolloutStore`` in the records' schema, one short connection per call."""

    def __init__(self, connections: ShortConnections) -> None:
        self._connections = connections

    def _run(self, query: str, params: Sequence[Any]) -> tuple[list[Row], int]:
        try:
            return self._connections.run(query, params)
        except psycopg.Error as exc:
            raise RolloutStoreUnavailable(f"postgres rollout records: {exc}") from exc
