"""The feedback store the settings name: PostgreSQL with ``database_url``, else SQLite under
the home."""

from __future__ import annotations

from app.feedback.store_sqlite import FEEDBACK_FILE, SqliteFeedbackStore
from app.feedback.types import FeedbackStore
from app.settings import Settings


def open_feedback_store(settings: Settings) -> FeedbackStore:
    if settings.database_url is not None:
        # Imported here: psycopg is the optional extra `postgres`.
        from app.feedback.store_postgres import PostgresFeedbackStore, unavailable
        from app.storage.postgres import database_from_settings

        return PostgresFeedbackStore(database_from_settings(settings, unavailable))
    return SqliteFeedbackStore(
        settings.privacy_dir / FEEDBACK_FILE,
        busy_timeout_ms=settings.events.sqlite_busy_timeout_ms,
    )
