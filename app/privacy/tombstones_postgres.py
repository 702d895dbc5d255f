"""Erasure tombstones in PostgreSQL: one row per erased pseudonym with its latest erasure time.

Blocking, one short connection per call: erasures are rare admin operations, run on a worker
thread, and the build reads the whole list once; a pool would hold connections for nothing.
"""

from __future__ import annotations

import psycopg

from app.privacy.tombstones import TombstonesUnavailable
from app.storage.postgres import ShortConnections


class PostgresTombstones:
    """``Tombstones`` in the records' schema."""

    def __init__(self, connections: ShortConnections) -> None:
        self._connections = connections

    def add(self, pseudonym: str, erased_at: float) -> None:
        self._run(
            "INSERT INTO erasure_tombstones VALUES (%s, %s) ON CONFLICT (pseudonym) "
            "DO UPDATE SET erased_at = greatest(erasure_tombstones.erased_at, EXCLUDED.erased_at)",
            (pseudonym, erased_at),
        )

    def erased(self) -> dict[str, float]:
        rows = self._run("SELECT pseudonym, erased_at FROM erasure_tombstones", ())
        return dict(rows)

    def erased_at(self, pseudonym: str) -> float | None:
        rows = self._run(
            "SELECT pseudonym, erased_at FROM erasure_tombstones WHERE pseudonym = %s",
            (pseudonym,),
        )
        return rows[0][1] if rows else None

    def _run(self, query: str, params: tuple[object, ...]) -> list[tuple[str, float]]:
        """``query`` in its own transaction; the (pseudonym, erased_at) rows it returns."""
        try:
            rows, _ = self._connections.run(query, params)
        except psycopg.Error as exc:
            raise TombstonesUnavailable(f"postgres erasure tombstones: {exc}") from exc
        return [(str(name), float(at)) for name, at in rows]
