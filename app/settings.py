"""All configuration, read from the environment (prefix ``RECSERVE_``) by pydantic-settings.

Nothing here performs I/O: a ``Settings`` object is a plain value that the CLI builds once and
passes down. Nested groups use ``__`` as delimiter, e.g. ``RECSERVE_CACHE__LOCAL_TTL_SECONDS=5``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Interface uvicorn binds to.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port uvicorn listens on.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes.")
    default_k: int = Field(10, ge=1, le=100, description="k when a request does not give one.")


class CacheSettings(BaseModel):
    enabled: bool = Field(True, description="Serve repeated requests from the cache tiers.")
    local_max_entries: int = Field(50_000, ge=0, description="In-process LRU size per worker.")
    local_ttl_seconds: float = Field(30.0, gt=0, description="In-process entry lifetime.")
    redis_ttl_seconds: int = Field(300, ge=1, description="Shared Redis tier entry lifetime.")


class RedisSettings(BaseModel):
    socket_timeout_seconds: float = Field(
        0.05, gt=0, description="Bound on every Redis call made on the request path."
    )
    connect_timeout_seconds: float = Field(0.05, gt=0, description="Bound on connecting.")
    retry_after_seconds: float = Field(
        2.0,
        gt=0,
        description="After a Redis failure, skip the shared tier this long before trying again.",
    )


class FeastSettings(BaseModel):
    project: str = Field("recserve", description="Feast project name.")
    # Infinite registry cache: the registry is read once at start-up and never on a request.
    registry_cache_ttl_seconds: int = Field(
        0, ge=0, description="Feast registry cache TTL; 0 means read once per process."
    )


class EventLogSettings(BaseModel):
    stream_key: str = Field(
        "recserve:events",
        description="Redis Stream key of the event log; dedupe keys are STREAM_KEY:seen:<id>.",
    )
    dedupe_window_seconds: int = Field(
        7 * 24 * 3600,
        ge=1,
        description="Redis backend: an event_id seen within this window is a duplicate. Costs "
        "one small key (~100 bytes) per event in the window. SQLite dedupes forever.",
    )
    max_stream_length: int | None = Field(
        None,
        ge=1,
        description="Redis backend: trim the stream towards this many entries on ack, removing "
        "only history every consumer group has acknowledged. Unset keeps everything, which the "
        "batch build replays.",
    )
    socket_timeout_seconds: float = Field(
        0.5,
        gt=0,
        description="Bound on every Redis call of the event log; a blocking read must wait "
        "less than this.",
    )
    sqlite_busy_timeout_ms: int = Field(
        5000, ge=0, description="SQLite backend: wait this long for another process's write lock."
    )


class Settings(BaseSettings):
    """Top-level settings. ``home`` holds every piece of generated state."""

    model_config = SettingsConfigDict(
        env_prefix="RECSERVE_", env_nested_delimiter="__", extra="ignore"
    )

    home: Path = Field(
        Path(".recserve"),
        description="Directory for all generated state: data, features, models, logs.",
    )
    redis_url: str | None = Field(
        None,
        description="When set (e.g. redis://127.0.0.1:6379/0), Redis is the Feast online store "
        "and the shared recommendation cache tier. Unset: SQLite online store, in-process cache.",
    )
    models_dir: Path | None = Field(
        None, description="Where model versions live; defaults to HOME/models."
    )
    api: ApiSettings = ApiSettings()
    cache: CacheSettings = CacheSettings()
    redis: RedisSettings = RedisSettings()
    feast: FeastSettings = FeastSettings()
    events: EventLogSettings = EventLogSettings()

    @property
    def data_dir(self) -> Path:
        """Validated, standardised tables written by ingestion (Parquet)."""
        return self.home / "data"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "data" / "quarantine"

    @property
    def offline_dir(self) -> Path:
        """Feast offline source tables (Parquet)."""
        return self.home / "offline"

    @property
    def feast_dir(self) -> Path:
        """Feast registry and SQLite online store."""
        return self.home / "feast"

    @property
    def events_dir(self) -> Path:
        """The embedded (SQLite) event log."""
        return self.home / "events"

    @property
    def model_root(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.home / "models"
