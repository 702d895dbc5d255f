"""Redis URLs for one server or a cluster, and the client each one makes."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis, RedisCluster

from app.infra.redis_client import (
    ClusterUrl,
    check_redis_url,
    parse_cluster_url,
    redis_client,
    slot_tag,
    socket_timeout_of,
)


def test_cluster_url_names_every_seed_node_and_its_credentials() -> None:
    parsed = parse_cluster_url("rediss+cluster://app:p%40ss@10.0.0.5:7000,[::1]:7001,cache:7002/")

    assert parsed == ClusterUrl(
        nodes=(("10.0.0.5", 7000), ("::1", 7001), ("cache", 7002)),
        username="app",
        password="p@ss",
        tls=True,
    )


def test_single_server_urls_pass_unchanged() -> None:
    assert check_redis_url("redis://127.0.0.1:6379/4") == "redis://127.0.0.1:6379/4"
    assert check_redis_url("rediss://cache:6380/0") == "rediss://cache:6380/0"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+cluster://127.0.0.1:7000/1", "no database"),
        ("redis+cluster://127.0.0.1:7000,cache/", "host:port"),
        ("redis+cluster://127.0.0.1:99999/", "host:port"),
        ("redis+cluster://127.0.0.1:7000/?timeout=1", "no query"),
        ("http://127.0.0.1:7000", "scheme"),
    ],
)
def test_malformed_urls_are_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_redis_url(url)


async def test_the_scheme_picks_the_client_and_every_call_is_bounded() -> None:
    single = redis_client("redis://127.0.0.1:6379/4", socket_timeout=0.05, connect_timeout=0.1)
    cluster = redis_client(
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001/", socket_timeout=0.05, connect_timeout=0.1
    )
    try:
        assert isinstance(single, Redis)
        assert isinstance(cluster, RedisCluster)
        assert socket_timeout_of(single) == socket_timeout_of(cluster) == 0.05
        # Keys sharing a prefix share a slot on a cluster; one server keeps its key names.
        assert slot_tag(cluster, "recserve:events") == "{recserve:events}"
        assert slot_tag(cluster, "{already}:tagged") == "{already}:tagged"
        assert slot_tag(single, "recserve:events") == "recserve:events"
    finally:
        await single.aclose()
        await cluster.aclose()
