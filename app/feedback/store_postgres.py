"""The feedback store in PostgreSQL, shared by every host: one row per statement, read by
user through an index; a statement is visible everywhere once its insert commits."""

from __future__ import annotations

from app.feedback.store_sqlite import feedback_row, not_interested_of
from app.feedback.types import Feedback, FeedbackKind, FeedbackUnavailable, NotInterested
from app.storage.postgres import PostgresDatabase


class PostgresFeedbackStore:
    """``FeedbackStore`` in the records' schema; owns ``database``."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._db = database

    async def record(self, feedback: Feedback) -> None:
        async with self._db.transaction() as connection:
            await connection.execute(
                "INSERT INTO feedback (user_key, kind, target, target_id, rating, at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    feedback.user_key,
                    feedback.kind.value,
                    feedback.target.value,
                    feedback.target_id,
                    feedback.rating,
                    feedback.at,
                ),
            )

    async def not_interested(self, user_key: str) -> NotInterested:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "SELECT target, target_id FROM feedback WHERE user_key = %s AND kind = %s",
                (user_key, FeedbackKind.NOT_INTERESTED.value),
            )
            rows = await cursor.fetchall()
        return not_interested_of([(target, target_id) for target, target_id in rows])

    async def entries(self, user_key: str) -> list[Feedback]:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "SELECT kind, target, target_id, rating, at FROM feedback "
                "WHERE user_key = %s ORDER BY id",
                (user_key,),
            )
            rows = await cursor.fetchall()
        return [feedback_row(user_key, *row) for row in rows]

    async def erase(self, user_key: str) -> int:
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "DELETE FROM feedback WHERE user_key = %s", (user_key,)
            )
            return cursor.rowcount

    async def close(self) -> None:
        await self._db.close()


def unavailable(detail: str) -> FeedbackUnavailable:
    """The store's error for a database that cannot be reached or refused the statement."""
    return FeedbackUnavailable(f"postgres feedback store {detail}")
