"""Apply the schema migrations (Alembic) to a database: ``recserve db upgrade``, or the API at
start-up. Replicas starting together are safe: the migration runs under an advisory lock, and
one that finds the schema current does nothing."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def upgrade(url: str, schema: str, revision: str = "head") -> None:
    """Bring ``schema`` (created when missing) of the database at ``url`` to ``revision``."""
    command.upgrade(_config(url, schema), revision)


def current(url: str, schema: str) -> str | None:
    """The revision ``schema`` is at, None before the first migration."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(_sqlalchemy_url(url), poolclass=NullPool)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table_schema": schema})
        return context.get_current_revision()


def _config(url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Attributes, not options: an option value goes through ConfigParser interpolation, which
    # a "%" in a password would break.
    config.attributes["url"] = _sqlalchemy_url(url)
    config.attributes["schema"] = schema
    return config


def _sqlalchemy_url(url: str) -> str:
    """``url`` for SQLAlchemy with the psycopg 3 driver the stores use."""
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
