"""Settings choose each store's backend: PostgreSQL for the records of truth with a database
URL, and each Redis role its own URL when given, ``redis_url`` otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from app.events.log import open_event_log
from app.experiments.store import open_exposure_store
from app.features.store import repo_config
from app.settings import RedisRoleUrls, Settings
from app.webhooks.outbox import open_outbox

DATABASE = SecretStr("postgresql://app:secret@db.internal:5432/records")


def test_each_redis_role_falls_back_to_redis_url() -> None:
    settings = Settings(
        redis_url="redis://shared:6379/0",
        redis_urls=RedisRoleUrls(cache="redis://cache:6379/0"),
    )
    assert settings.redis_url_for("cache") == "redis://cache:6379/0"
    assert settings.redis_url_for("event_log") == "redis://shared:6379/0"
    assert settings.redis_url_for("online_store") == "redis://shared:6379/0"
    assert Settings().redis_url_for("cache") is None


def test_role_urls_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSERVE_REDIS_URLS__ONLINE_STORE", "redis://features:6379/2")
    monkeypatch.setenv("RECSERVE_DATABASE_URL", DATABASE.get_secret_value())
    settings = Settings()
    assert settings.redis_url_for("online_store") == "redis://features:6379/2"
    assert settings.database_url == DATABASE
    assert "app:secret@" not in repr(settings)  # the URL's password stays out of logs


def test_the_online_store_uses_its_own_redis(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        redis_url="redis://shared:6379/0",
        redis_urls=RedisRoleUrls(online_store="redis://features:6380/3"),
    )
    online = repo_config(settings).online_store
    assert online.type == "redis"
    assert online.connection_string.startswith("features:6380,db=3")


async def test_a_database_url_puts_the_records_in_postgresql(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, redis_url="redis://shared:6379/0", database_url=DATABASE)
    stores = [open_event_log(settings), open_exposure_store(settings), open_outbox(settings)]
    assert [store.backend for store in stores] == ["postgres"] * 3
    for store in stores:
        await store.close()


async def test_without_a_database_the_event_log_follows_its_redis_role(tmp_path: Path) -> None:
    with_role = Settings(home=tmp_path, redis_urls=RedisRoleUrls(event_log="redis://log:6379/0"))
    embedded = Settings(home=tmp_path)
    logs = [open_event_log(with_role), open_event_log(embedded)]
    assert [log.backend for log in logs] == ["redis", "sqlite"]
    for log in logs:
        await log.close()
