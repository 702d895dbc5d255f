from __future__ import annotations

from datetime import UTC, datetime

import pytest
from feast.infra.online_stores.redis import RedisOnlineStore

from app.features.store import apply_and_materialize, redis_connection_string, repo_config
from app.settings import Settings
from tests.features.test_client import materialized_home


def _parsed(connection_string: str) -> tuple[list[dict[str, str]], dict[str, object]]:
    """What Feast's Redis store will pass to redis-py."""
    return RedisOnlineStore._parse_connection_string(connection_string)


def test_plain_url_maps_to_feast_form_with_timeouts_and_no_retries():
    text = redis_connection_string(
        "redis://10.0.0.5:6380/15", socket_timeout=0.05, connect_timeout=0.1
    )

    assert text == ("10.0.0.5:6380,db=15,socket_timeout=0.05,socket_connect_timeout=0.1,retry=null")
    assert _parsed(text) == (
        [{"host": "10.0.0.5", "port": "6380"}],
        {"db": 15, "socket_timeout": 0.05, "socket_connect_timeout": 0.1, "retry": None},
    )


def test_credentials_stay_strings_and_rediss_turns_on_ssl():
    text = redis_connection_string(
        "rediss://bob:12%3D3@cache.internal", socket_timeout=1.0, connect_timeout=1.0
    )

    nodes, params = _parsed(text)
    assert nodes == [{"host": "cache.internal", "port": "6379"}]
    assert (params["db"], params["username"], params["password"], params["ssl"]) == (
        0,
        "bob",
        "12=3",  # JSON-quoted, so Feast does not turn it into a number
        True,
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://localhost:6379/0", "redis://"),
        ("redis://localhost:6379/zero", "database must be a number"),
        ("redis://localhost:6379/0?timeout=1", "query"),
        ("redis://:a%2Cb@localhost:6379/0", "comma"),
    ],
)
def test_urls_feast_cannot_take_are_rejected(url, problem):
    with pytest.raises(ValueError, match=problem):
        redis_connection_string(url, socket_timeout=1.0, connect_timeout=1.0)


def test_sqlite_config_by_default(tmp_path):
    settings = Settings(home=tmp_path, feast={"project": "shop", "registry_cache_ttl_seconds": 0})

    config = repo_config(settings)

    assert config.project == "shop"
    assert config.registry.path == str(tmp_path / "feast" / "registry.db")
    assert config.registry.cache_ttl_seconds == 0
    assert config.online_store.type == "sqlite"
    assert config.online_store.path == str(tmp_path / "feast" / "online.db")
    assert config.offline_store.type == "file"
    assert config.entity_key_serialization_version == 3


def test_redis_config_when_a_url_is_set(tmp_path):
    settings = Settings(home=tmp_path, redis_url="redis://127.0.0.1:6379/3")

    config = repo_config(settings)

    assert config.online_store.type == "redis"
    assert config.online_store.connection_string.startswith("127.0.0.1:6379,db=3,")


def test_materialize_without_offline_tables_names_the_file(tmp_path):
    settings = Settings(home=tmp_path)

    with pytest.raises(FileNotFoundError, match=r"user_attributes\.parquet"):
        apply_and_materialize(settings, as_of=datetime(2024, 1, 1, tzinfo=UTC))
    assert not settings.feast_dir.exists()  # nothing half-applied


def test_feast_progress_has_no_colour_codes_when_not_on_a_terminal(tmp_path, capfd):
    materialized_home(tmp_path / "home")
    printed = capfd.readouterr()
    assert "user_behaviour" in printed.out  # Feast did print its progress
    assert "\x1b[" not in printed.out + printed.err


def test_cluster_url_maps_to_feast_seed_nodes_without_database_or_retries():
    text = redis_connection_string(
        "rediss+cluster://bob:pw@10.0.0.5:7000,10.0.0.6:7001/",
        socket_timeout=0.05,
        connect_timeout=0.1,
    )

    nodes, params = _parsed(text)
    assert nodes == [{"host": "10.0.0.5", "port": "7000"}, {"host": "10.0.0.6", "port": "7001"}]
    assert params == {
        "socket_timeout": 0.05,
        "socket_connect_timeout": 0.1,
        "cluster_error_retry_attempts": 0,
        "username": "bob",
        "password": "pw",
        "ssl": True,
    }


def test_cluster_url_makes_a_redis_cluster_online_store(tmp_path):
    settings = Settings(
        home=tmp_path, redis_urls={"online_store": "redis+cluster://127.0.0.1:7000,127.0.0.1:7001/"}
    )

    config = repo_config(settings)

    assert config.online_store.type == "redis"
    assert config.online_store.redis_type == "redis_cluster"
    assert config.online_store.connection_string.startswith("127.0.0.1:7000,127.0.0.1:7001,")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+cluster://127.0.0.1:7000/3", "no database"),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1/", "host:port"),
        ("redis+cluster://127.0.0.1:7000/?x=1", "no query"),
        ("memcached://127.0.0.1:11211", "scheme"),
    ],
)
def test_settings_refuse_redis_urls_no_client_can_use(url, problem):
    with pytest.raises(ValueError, match=problem):
        Settings(redis_url=url)
