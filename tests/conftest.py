"""Shared fixtures: a small synthetic shop built once per session into a temporary home."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from app.settings import Settings

TEST_REDIS_URL = os.environ.get("RECSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


async def delete_redis_keys(match: str) -> None:
    """Delete the keys matching the glob ``match`` on the test Redis: one test's own keys,
    never the whole database, which other engineers' tests share."""
    async with Redis.from_url(TEST_REDIS_URL) as client:
        keys = [key async for key in client.scan_iter(match=match)]
        if keys:
            await client.delete(*keys)


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
