"""The embedded feedback store: one SQLite file (WAL, ``synchronous=FULL``) under the home.

Reads of a user's "not interested" entries run inline on the event loop on a connection of
their own (an indexed lookup in WAL mode takes microseconds and never waits for a writer);
writes fsync on a worker thread. Every worker of the host reads the file, so feedback stored by
one is seen by all at once.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.feedback.types import (
    Feedback,
    FeedbackKind,
    FeedbackTarget,
    FeedbackUnavailable,
    NotInterested,
)
from app.infra.sqlite_file import SqliteFile, erase, transaction

# Ordered, oldest first: the n-th brings a file from schema version n-1 to n (sqlite_file).
MIGRATIONS = (
    """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    target_id TEXT NOT NULL,
    rating INTEGER,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_user ON feedback (user_key, kind);
""",
)
FEEDBACK_FILE = "feedback.db"  # under ``Settings.privacy_dir``
READ_BUSY_TIMEOUT_SECONDS = 0.05


class SqliteFeedbackStore:
    """``FeedbackStore`` in one local file, created with its directory on first use."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._reader: sqlite3.Connection | None = None
        self._writer = SqliteFile(
            path,
            migrations=MIGRATIONS,
            busy_timeout_ms=busy_timeout_ms,
            synchronous="FULL",
            unavailable=lambda detail: FeedbackUnavailable(f"sqlite feedback store {detail}"),
        )

    async def record(self, feedback: Feedback) -> None:
        def write(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                connection.execute(
                    "INSERT INTO feedback (user_key, kind, target, target_id, rating, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        feedback.user_key,
                        feedback.kind.value,
                        feedback.target.value,
                        feedback.target_id,
                        feedback.rating,
                        feedback.at,
                    ),
                )

        await self._writer.run(write)

    async def not_interested(self, user_key: str) -> NotInterested:
        """Inline indexed read (see the module docstring)."""
        try:
            if self._reader is None:
                self._reader = self._writer.connect(READ_BUSY_TIMEOUT_SECONDS)
            rows = self._reader.execute(
                "SELECT target, target_id FROM feedback WHERE user_key = ? AND kind = ?",
                (user_key, FeedbackKind.NOT_INTERESTED.value),
            ).fetchall()
        except (sqlite3.Error, OSError) as exc:
            raise FeedbackUnavailable(f"sqlite feedback store {self.path}: {exc}") from exc
        return not_interested_of(rows)

    async def entries(self, user_key: str) -> list[Feedback]:
        def read(connection: sqlite3.Connection) -> list[Feedback]:
            rows = connection.execute(
                "SELECT kind, target, target_id, rating, at FROM feedback "
                "WHERE user_key = ? ORDER BY id",
                (user_key,),
            ).fetchall()
            return [feedback_row(user_key, *row) for row in rows]

        return await self._writer.run(read)

    async def erase(self, user_key: str) -> int:
        def delete(connection: sqlite3.Connection) -> int:
            return connection.execute(
                "DELETE FROM feedback WHERE user_key = ?", (user_key,)
            ).rowcount

        return await self._writer.run(lambda connection: erase(connection, delete))

    async def close(self) -> None:
        await self._writer.close()
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def not_interested_of(rows: list[tuple[str, str]]) -> NotInterested:
    """The rows' (target, target_id) pairs as items and categories."""
    items = frozenset(t_id for target, t_id in rows if target == FeedbackTarget.ITEM)
    categories = frozenset(t_id for target, t_id in rows if target == FeedbackTarget.CATEGORY)
    return NotInterested(items, categories)


def feedback_row(
    user_key: str, kind: str, target: str, target_id: str, rating: int | None, at: float
) -> Feedback:
    return Feedback(
        user_key, FeedbackKind(kind), FeedbackTarget(target), target_id, float(at), rating
    )
