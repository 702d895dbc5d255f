"""Shared fixtures: a small synthetic shop built once per session into a temporary home."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.infra.redis_client import redis_client
from app.infra.redis_scan import scan_pages
from app.settings import Settings
from app.storage.postgres import PostgresDatabase, upgrade
from tests.fixtures.redis_cluster import (
    RedisClusterProcesses,
    RedisClusterUnavailable,
    start_redis_cluster,
)

TEST_REDIS_URL = os.environ.get("RECSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_DATABASE_URL = os.environ.get(
    "RECSERVE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
POSTGRES_MARKS = [pytest.mark.postgres, pytest.mark.integration]


async def delete_redis_keys(match: str, url: str = TEST_REDIS_URL) -> None:
    """Delete the keys matching the glob ``match`` (or ``{`` + ``match``, the same keys
    hash-tagged on a cluster) on the test Redis or cluster at ``url``: one test's own keys,
    never the whole database, which other engineers' tests share."""
    client = redis_client(url, socket_timeout=5.0, connect_timeout=5.0)
    async with client:
        for pattern in (match, "{" + match):
            async for keys in scan_pages(client, pattern):
                await client.delete(*keys)  # a cluster client sends one DEL per slot


@pytest.fixture(scope="session")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of a home holding ingested data, SQLite features and a published model."""
    from app.data.synthetic import generate_shop
    from app.training.pipeline import build

    root = tmp_path_factory.mktemp("built")
    source = generate_shop(root / "source", n_users=400, n_items=150, n_events=12_000, seed=3)
    settings = Settings(home=root / "home")
    build(settings, source, tuning_budget_seconds=10)
    return settings


@pytest.fixture(scope="session")
def shop_source(built_home: Settings) -> Path:
    return built_home.home.parent / "source" / "shop"


@pytest.fixture(scope="module")
def home(built_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A copy of the built home for one test module, which may change it (events, erasures)."""
    target = tmp_path_factory.mktemp("home") / "home"
    shutil.copytree(built_home.home, target)
    return Settings(home=target)


@pytest.fixture(scope="module")
def client(home: Settings) -> Iterator[TestClient]:
    """The real app on the module's ``home``, started and stopped once per module."""
    from app.api.main import create_app

    with TestClient(create_app(home)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A 3-master, 3-replica Redis Cluster started once per session on free loopback ports
    (``tests/fixtures/redis_cluster.py``); ``.url`` is its seed URL. Skips when redis-server is
    not installed, except on CI (``CI=true``), where it fails."""
    try:
        cluster = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    except RedisClusterUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis Cluster tests need the Redis binaries on CI: {exc}")
        pytest.skip(f"Redis Cluster tests need the Redis binaries: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: RedisClusterProcesses) -> str:
    """The seed URL of the session's Redis Cluster, e.g.
    ``redis+cluster://127.0.0.1:7000,127.0.0.1:7001,.../``."""
    return redis_cluster.url


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A schema of this test run's own in the test database, migrated to the newest revision
    and dropped at the end. Without a reachable PostgreSQL the tests skip, except on CI
    (``CI=true``), where they fail."""
    import psycopg

    try:
        psycopg.connect(TEST_DATABASE_URL, connect_timeout=2).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required on CI (RECSERVE_TEST_DATABASE_URL): {exc}")
        pytest.skip(f"no PostgreSQL at RECSERVE_TEST_DATABASE_URL: {exc}")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    upgrade(TEST_DATABASE_URL, schema)
    yield schema
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_empty_schema(postgres_schema: str) -> str:
    """The test run's schema with every table emptied for this test."""
    import psycopg

    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s "
                "AND tablename <> 'alembic_version'",
                (postgres_schema,),
            )
        ]
        if tables:
            names = ", ".join(f'"{postgres_schema}"."{table}"' for table in tables)
            connection.execute(f"TRUNCATE {names}")
    return postgres_schema


@pytest.fixture
def fresh_postgres_schema(postgres_schema: str) -> Iterator[str]:
    """A schema name nothing has made yet (the session schema proves PostgreSQL is up),
    dropped after the test."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres_database(schema: str, unavailable: Callable[[str], Exception]) -> PostgresDatabase:
    """A small pool on the test database's ``schema``; the caller closes it."""
    return PostgresDatabase(TEST_DATABASE_URL, schema=schema, unavailable=unavailable, max_size=4)
