"""Feast configuration, apply and materialization, all derived from ``Settings``.

``import feast`` costs seconds, so Feast is imported inside the functions that need it, never
when this module is imported.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from app.infra.redis_client import is_cluster_url, parse_cluster_url
from app.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

log = logging.getLogger(__name__)

REGISTRY_FILE = "registry.db"
SQLITE_FILE = "online.db"
ENTITY_KEY_SERIALIZATION_VERSION = 3
# Materialization copies rows whose event_timestamp is in [start, end): every offline row is
# stamped exactly as_of, so a one-second window after it is enough.
MATERIALIZE_WINDOW = timedelta(seconds=1)


def repo_config(
    settings: Settings, *, writes_are_newest: bool = False, batch: bool = False
) -> RepoConfig:
    """The Feast configuration for ``settings``: file registry under ``feast_dir``, SQLite
    online store there too unless the online store has a Redis URL (``redis_urls.online_store``,
    else ``redis_url``; then Redis), file offline store.

    Redis calls are bounded by the request-path timeouts, or with ``batch`` (a job writing
    whole views) by ``redis.batch_timeout_seconds``.

    ``writes_are_newest``: the caller only writes rows stamped with the current time, so
    Feast's Redis check that each row is newer than the stored one (a round trip reading
    every row's timestamp before the write) can never refuse one and is skipped."""
    from feast.repo_config import RegistryConfig, RepoConfig

    online_store: dict[str, Any]
    redis_url = settings.redis_url_for("online_store")
    if redis_url:
        redis = settings.redis
        socket_timeout = redis.batch_timeout_seconds if batch else redis.socket_timeout_seconds
        connect_timeout = redis.batch_timeout_seconds if batch else redis.connect_timeout_seconds
        online_store = {
            "type": "redis",
            "redis_type": "redis_cluster" if is_cluster_url(redis_url) else "redis",
            "connection_string": redis_connection_string(
                redis_url, socket_timeout=socket_timeout, connect_timeout=connect_timeout
            ),
            "skip_dedup": writes_are_newest,
        }
    else:
        online_store = {"type": "sqlite", "path": str(sqlite_path(settings))}
    registry = RegistryConfig(
        path=str(registry_path(settings)),
        cache_ttl_seconds=settings.feast.registry_cache_ttl_seconds,
        # TTL 0 never expires, and while the cache is valid get_online_features reuses Feast's
        # per-process feature resolution, never the registry. "sync" would still stat the file
        # on other cached reads to notice other writers; "thread" only honours the TTL (a file
        # registry starts no thread), so the file is read once per process.
        cache_mode="thread",
    )
    return RepoConfig(
        project=settings.feast.project,
        provider="local",
        registry=registry,
        online_store=online_store,
        offline_store={"type": "file"},
        entity_key_serialization_version=ENTITY_KEY_SERIALIZATION_VERSION,
        repo_path=settings.feast_dir,
    )


def registry_path(settings: Settings) -> Path:
    """``<feast_dir>/registry.db``."""
    return settings.feast_dir / REGISTRY_FILE


def sqlite_path(settings: Settings) -> Path:
    """``<feast_dir>/online.db``, the SQLite online store (used when no Redis URL is set)."""
    return settings.feast_dir / SQLITE_FILE


def redis_connection_string(url: str, *, socket_timeout: float, connect_timeout: float) -> str:
    """Turn ``redis[s]://[user:password@]host[:port][/db]`` into Feast's
    ``host:port,db=N,...`` form (a cluster URL, ``redis[s]+cluster://host:port,host:port/``,
    into ``host:port,host:port,...``), with redis-py timeouts and no retries so a dead Redis
    fails within the timeouts (redis-py would otherwise retry 3 times with backoff of seconds).

    Feast splits the string on commas and JSON-decodes each value, so user names and
    passwords are JSON-quoted (to stay strings) and may not contain a comma.
    """
    timeouts = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout}
    params: dict[str, object]
    if is_cluster_url(url):
        cluster = parse_cluster_url(url)
        nodes = [f"{host}:{port}" for host, port in cluster.nodes]
        # Feast builds redis-py's RedisCluster, whose retry setting is this count.
        params = {**timeouts, "cluster_error_retry_attempts": 0}
        username, password, tls = cluster.username, cluster.password, cluster.tls
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"redis_url {url!r}: expected redis:// or rediss://")
        if parts.query or parts.fragment:
            raise ValueError(f"redis_url {url!r}: query parameters are not supported")
        db = parts.path.strip("/") or "0"
        if not db.isdigit():
            raise ValueError(f"redis_url {url!r}: database must be a number, got {db!r}")
        nodes = [f"{parts.hostname or 'localhost'}:{parts.port or 6379}"]
        params = {"db": int(db), **timeouts, "retry": None}
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        tls = parts.scheme == "rediss"
    if username:
        params["username"] = username
    if password:
        params["password"] = password
    if tls:
        params["ssl"] = True
    rendered = [f"{key}={json.dumps(value)}" for key, value in params.items()]
    if any("," in item for item in rendered):
        raise ValueError("redis_url: Feast cannot take a user name or password with a comma")
    return ",".join([*nodes, *rendered])


def open_store(
    settings: Settings, *, writes_are_newest: bool = False, batch: bool = False
) -> FeatureStore:
    """A ``FeatureStore`` for ``settings`` (see ``repo_config``); nothing is read until it is
    first used."""
    from feast import FeatureStore

    config = repo_config(settings, writes_are_newest=writes_are_newest, batch=batch)
    return FeatureStore(repo_path=str(settings.feast_dir), config=config)


def apply_and_materialize(
    settings: Settings, *, as_of: datetime, only: Sequence[str] | None = None
) -> None:
    """Register the repo's definitions for ``settings.offline_dir`` and copy every view's (or
    the ``only`` views') offline rows stamped ``as_of`` into the online store.

    Raises ``FileNotFoundError`` naming the offline table when one has not been built.
    """
    from colorama import colorama_text

    from feature_repo.definitions import definitions, offline_file

    repo = definitions(settings.offline_dir)
    every = (repo.user_attributes, repo.user_behaviour, repo.item_features, repo.user_segments)
    views = [view for view in every if only is None or view.name in only]
    for view in views:
        path = offline_file(settings.offline_dir, view.name)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: offline table missing; build the feature tables")
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings, batch=True)
    started = time.perf_counter()
    # Feast prints its progress in ANSI colours; colorama strips them when stdout is not a
    # terminal (a log file, a pipe), where they would be escape codes in the text.
    with colorama_text():
        store.apply(repo.objects())
        if not settings.redis_url_for("online_store"):
            use_write_ahead_log(sqlite_path(settings))
        applied = time.perf_counter()
        store.materialize(
            start_date=as_of,
            end_date=as_of + MATERIALIZE_WINDOW,
            feature_views=[view.name for view in views],
        )
    log.info(
        "feast apply took %.2fs, materialize of %s took %.2fs",
        applied - started,
        [view.name for view in views],
        time.perf_counter() - applied,
    )


def use_write_ahead_log(database: Path) -> None:
    """Switch a SQLite online store to WAL (a setting stored in the file): readers then never
    wait for a writer such as a later materialize. In the default journal mode a read during a
    commit waits out sqlite3's 5 s busy timeout, which Feast offers no way to shorten."""
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
