"""Alembic's entry point: run the pending scripts on one connection, in the configured
schema, holding an advisory lock so concurrent upgrades (replicas starting together) queue
instead of racing."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

# Any fixed number: the lock's name among the database's advisory locks.
MIGRATION_LOCK = 0x72656373  # "recs"


def run_migrations() -> None:
    url: str = context.config.attributes["url"]
    schema: str = context.config.attributes["schema"]
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.execute(text(f'SET search_path TO "{schema}"'))
        connection.commit()
        context.configure(connection=connection, version_table_schema=schema)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()


run_migrations()
