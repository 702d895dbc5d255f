"""PostgreSQL, the system of record: one connection pool per store and the schema migrations
(Alembic, ``app/storage/postgres/migrations``) every store's tables come from."""

from app.storage.postgres.database import (
    PostgresDatabase,
    ShortConnections,
    database_from_settings,
    short_connections_from_settings,
)
from app.storage.postgres.migrate import upgrade

__all__ = [
    "PostgresDatabase",
    "ShortConnections",
    "database_from_settings",
    "short_connections_from_settings",
    "upgrade",
]
