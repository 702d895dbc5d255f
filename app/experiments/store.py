"""Pick the ``ExposureStore`` backend from settings: PostgreSQL or Redis when configured, else
SQLite."""

from __future__ import annotations

from app.experiments.attribution import ExposureStore
from app.experiments.store_redis import RedisExposureStore
from app.experiments.store_sqlite import SqliteExposureStore
from app.infra.redis_client import redis_client
from app.settings import Settings

SQLITE_FILE = "exposures.db"


def open_exposure_store(settings: Settings) -> ExposureStore:
    """PostgreSQL when ``settings.database_url`` is set, else the Redis store when
    ``settings.redis_url`` is set, else SQLite under ``settings.experiments_dir``. No I/O here;
    the first call connects."""
    if settings.database_url is not None:
        # Imported here: psycopg is the optional extra `postgres`.
        from app.experiments.store_postgres import PostgresExposureStore, unavailable
        from app.storage.postgres import database_from_settings

        return PostgresExposureStore(database_from_settings(settings, unavailable))
    if settings.redis_url is None:
        return SqliteExposureStore(settings.experiments_dir / SQLITE_FILE)
    # The store is on the request path: the same bound as the cache, and no hidden retries
    # (a failed write is counted and the request served anyway).
    client = redis_client(
        settings.redis_url,
        socket_timeout=settings.redis.socket_timeout_seconds,
        connect_timeout=settings.redis.connect_timeout_seconds,
    )
    return RedisExposureStore(client, prefix=settings.attribution.redis_key_prefix)
