"""Erasure rewrites the files of every Redis that may hold a user, each once."""

from __future__ import annotations

from pathlib import Path

from app.bootstrap import redis_instances
from app.settings import RedisRoleUrls, Settings


def test_every_role_redis_is_rewritten_once(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        redis_url="redis://shared:6379/0",
        redis_urls=RedisRoleUrls(cache="redis://cache:6379/0", event_log="redis://shared:6379/0"),
    )
    assert redis_instances(settings) == ["redis://shared:6379/0", "redis://cache:6379/0"]


def test_a_role_redis_without_a_shared_one_is_still_rewritten(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, redis_urls=RedisRoleUrls(online_store="redis://f:1/2"))
    assert redis_instances(settings) == ["redis://f:1/2"]


def test_no_redis_no_rewrite(tmp_path: Path) -> None:
    assert redis_instances(Settings(home=tmp_path)) == []
