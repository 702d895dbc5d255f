"""The rollout record store: rollouts and model changes, in SQLite under the home or, with
``RECSERVE_DATABASE_URL``, in PostgreSQL (``store_postgres``).

Blocking, one short connection per call: the rollout job, the CLI and the admin pages touch it
a few times a minute, from worker threads. Both backends run the same SQL (``%s`` parameters,
which the SQLite backend rewrites). A rollout leaves ``running`` at most once:
``finish_rollout`` only updates a running row, so two workers deciding at once cannot both act.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from app.infra.sqlite_file import migrate, transaction
from app.rollout.records import DecidedBy, ModelChange, Rollout, RolloutStatus
from app.settings import Settings

SQLITE_FILE = "rollout.db"
# Ordered, oldest first: the n-th brings a SQLite file from schema version n-1 to n
# (``app.infra.sqlite_file``); PostgreSQL has its Alembic migration.
SQLITE_MIGRATIONS = (
    """
CREATE TABLE IF NOT EXISTS rollouts (
    rollout_id text PRIMARY KEY,
    challenger text NOT NULL,
    champion text NOT NULL,
    traffic_share double precision NOT NULL,
    started_at double precision NOT NULL,
    status text NOT NULL,
    decided_at double precision,
    decided_by text,
    reason text NOT NULL DEFAULT '',
    last_look text NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS model_changes (
    change_id text PRIMARY KEY,
    kind text NOT NULL,
    at double precision NOT NULL,
    from_version text,
    to_version text NOT NULL,
    reason text NOT NULL DEFAULT '',
    report text
);
""",
)
_ROLLOUT_COLUMNS = (
    "rollout_id, challenger, champion, traffic_share, started_at, status, decided_at, "
    "decided_by, reason, last_look"
)
_CHANGE_COLUMNS = "change_id, kind, at, from_version, to_version, reason, report"
Row = tuple[Any, ...]


class RolloutStoreUnavailable(OSError):
    """The record store cannot be read or written."""


class RolloutStore(Protocol):
    """Rollouts and model changes. Blocking: call off the event loop."""

    def start_rollout(self, rollout: Rollout) -> bool:
        """Record a new rollout; False (nothing written) when its id is already recorded."""
        ...

    def rollout(self, rollout_id: str) -> Rollout | None: ...

    def rollouts(self, limit: int) -> list[Rollout]:
        """The latest ``limit`` rollouts, newest first."""
        ...

    def record_look(self, rollout_id: str, look: dict[str, Any]) -> None:
        """Keep the latest look of a running rollout's test."""
        ...

    def finish_rollout(
        self,
        rollout_id: str,
        status: RolloutStatus,
        *,
        at: float,
        decided_by: DecidedBy,
        reason: str,
    ) -> bool:
        """Move a running rollout to ``status``; False when it was not running (already
        decided elsewhere): the caller must not act on it."""
        ...

    def add_change(self, change: ModelChange) -> bool:
        """Record a model change; False when its id is already recorded."""
        ...

    def change(self, change_id: str) -> ModelChange | None: ...

    def changes(self, limit: int) -> list[ModelChange]:
        """The latest ``limit`` changes, newest first."""
        ...

    def save_report(self, change_id: str, report: dict[str, Any]) -> None:
        """Attach the before/after report to a change."""
        ...


class SqlRolloutStore(ABC):
    """``RolloutStore`` over any SQL backend that runs ``_run``."""

    @abstractmethod
    def _run(self, query: str, params: Sequence[Any]) -> tuple[list[Row], int]:
        """``query`` in its own transaction: the rows it returns and the rows it changed."""

    def start_rollout(self, rollout: Rollout) -> bool:
        _, changed = self._run(
            f"INSERT INTO rollouts ({_ROLLOUT_COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (rollout_id) DO NOTHING",
            (
                rollout.rollout_id,
                rollout.challenger,
                rollout.champion,
                rollout.traffic_share,
                rollout.started_at,
                rollout.status,
                rollout.decided_at,
                rollout.decided_by,
                rollout.reason,
                json.dumps(rollout.last_look),
            ),
        )
        return changed == 1

    def rollout(self, rollout_id: str) -> Rollout | None:
        rows, _ = self._run(
            f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE rollout_id = %s", (rollout_id,)
        )
        return _rollout(rows[0]) if rows else None

    def rollouts(self, limit: int) -> list[Rollout]:
        rows, _ = self._run(
            f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts ORDER BY started_at DESC LIMIT %s", (limit,)
        )
        return [_rollout(row) for row in rows]

    def record_look(self, rollout_id: str, look: dict[str, Any]) -> None:
        self._run(
            "UPDATE rollouts SET last_look = %s WHERE rollout_id = %s AND status = 'running'",
            (json.dumps(look), rollout_id),
        )

    def finish_rollout(
        self,
        rollout_id: str,
        status: RolloutStatus,
        *,
        at: float,
        decided_by: DecidedBy,
        reason: str,
    ) -> bool:
        _, changed = self._run(
            "UPDATE rollouts SET status = %s, decided_at = %s, decided_by = %s, reason = %s "
            "WHERE rollout_id = %s AND status = 'running'",
            (status, at, decided_by, reason, rollout_id),
        )
        return changed == 1

    def add_change(self, change: ModelChange) -> bool:
        _, changed = self._run(
            f"INSERT INTO model_changes ({_CHANGE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (change_id) DO NOTHING",
            (
                change.change_id,
                change.kind,
                change.at,
                change.from_version,
                change.to_version,
                change.reason,
                None if change.report is None else json.dumps(change.report),
            ),
        )
        return changed == 1

    def change(self, change_id: str) -> ModelChange | None:
        rows, _ = self._run(
            f"SELECT {_CHANGE_COLUMNS} FROM model_changes WHERE change_id = %s", (change_id,)
        )
        return _change(rows[0]) if rows else None

    def changes(self, limit: int) -> list[ModelChange]:
        rows, _ = self._run(
            f"SELECT {_CHANGE_COLUMNS} FROM model_changes ORDER BY at DESC LIMIT %s", (limit,)
        )
        return [_change(row) for row in rows]

    def save_report(self, change_id: str, report: dict[str, Any]) -> None:
        self._run(
            "UPDATE model_changes SET report = %s WHERE change_id = %s",
            (json.dumps(report), change_id),
        )


class SqliteRolloutStore(SqlRolloutStore):
    """The embedded store: one SQLite file shared by the workers, the job and the CLI."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._timeout_seconds = busy_timeout_ms / 1000

    def _run(self, query: str, params: Sequence[Any]) -> tuple[list[Row], int]:
        # A connection per call: the job looks every few seconds and operators rarely, and a
        # file replaced or damaged under a running server is then reported, not served from
        # an old connection's pages.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, isolation_level=None, timeout=self._timeout_seconds
            )
            try:
                migrate(connection, SQLITE_MIGRATIONS)
                with transaction(connection):
                    cursor = connection.execute(query.replace("%s", "?"), tuple(params))
                    return cursor.fetchall(), cursor.rowcount
            finally:
                connection.close()
        except (sqlite3.Error, OSError) as exc:
            raise RolloutStoreUnavailable(f"rollout records {self.path}: {exc}") from exc


def open_rollout_store(settings: Settings) -> RolloutStore:
    """PostgreSQL when ``settings.database_url`` is set, else SQLite under the home."""
    if settings.database_url is None:
        return SqliteRolloutStore(
            settings.rollout_dir / SQLITE_FILE,
            busy_timeout_ms=settings.events.sqlite_busy_timeout_ms,
        )
    # Imported here: psycopg is the optional extra `postgres`.
    from app.rollout.store_postgres import PostgresRolloutStore
    from app.storage.postgres import short_connections_from_settings

    return PostgresRolloutStore(short_connections_from_settings(settings))


def _rollout(row: Row) -> Rollout:
    names = [name.strip() for name in _ROLLOUT_COLUMNS.split(",")]
    values = dict(zip(names, row, strict=True))
    values["last_look"] = json.loads(values["last_look"] or "{}")
    return Rollout.model_validate(values)


def _change(row: Row) -> ModelChange:
    names = [name.strip() for name in _CHANGE_COLUMNS.split(",")]
    values = dict(zip(names, row, strict=True))
    values["report"] = None if values["report"] is None else json.loads(values["report"])
    return ModelChange.model_validate(values)
