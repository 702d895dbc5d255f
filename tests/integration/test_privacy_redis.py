"""Consent and erasure with every store in a real Redis (Feast online store, cache tier, event
log stream, consent store, experiment exposures, webhook outbox): the app in process, Redis
private to the test."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.api.main import create_app
from app.features.client import FeastFeatureClient
from app.privacy.pseudonym import Pseudonymizer
from app.settings import Settings
from tests.integration.conftest import PrivateRedis, users_with_history
from tests.integration.test_redis_outage import redis_home  # noqa: F401 (fixture)
from tests.privacy.helpers import (
    batch_tables_holding,
    event,
    exposures_and_dead_letters,
    logged_events,
    served_and_clicked,
    wait_for,
    with_experiment_and_crm,
)

pytestmark = pytest.mark.integration


def _redis_mentions(client: redis.Redis, text: str) -> list[bytes]:
    """Keys whose name or value holds ``text`` (every Redis type the app writes)."""
    needle = text.encode()
    found = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        values: list[bytes]
        if kind == b"string":
            values = [client.get(key) or b""]
        elif kind == b"hash":
            values = [b"".join(pair) for pair in client.hgetall(key).items()]
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"set":
            values = list(client.smembers(key))
        elif kind == b"zset":
            values = client.zrange(key, 0, -1)
        elif kind == b"stream":
            values = [
                b"".join(b"".join(f) for f in fields.items()) for _, fields in client.xrange(key)
            ]
        else:
            values = []
        if needle in key or any(needle in value for value in values):
            found.append(key)
    return found


def _online(settings: Settings, user_id: str) -> object:
    client = FeastFeatureClient.from_settings(settings)
    try:
        return client.get_user(user_id)
    finally:
        client.close()


def test_consent_is_honoured_with_redis(
    redis_home: Settings,  # noqa: F811 (fixture)
) -> None:
    refusing, consenting = users_with_history(redis_home)[:2]
    with TestClient(create_app(redis_home)) as client:
        client.put(f"/users/{refusing}/consent", json={"tracking": False, "personalization": False})
        reads_before = REGISTRY.get_sample_value("recserve_features_fetch_seconds_count") or 0

        answer = client.get("/recommend", params={"user_id": refusing}).json()
        posted = client.post(
            "/events",
            json={"events": [event(refusing, "sku-000001"), event(consenting, "sku-000002")]},
        ).json()

        assert (answer["source"], answer["fallback_reason"]) == ("popular", "no_consent")
        assert REGISTRY.get_sample_value("recserve_features_fetch_seconds_count") == reads_before
        assert (posted["accepted_count"], posted["not_consented_count"]) == (1, 1)
        assert {e.user_id for e in logged_events(redis_home)} == {consenting}
        body = client.get(f"/users/{refusing}/consent").json()
        assert (body["personalization"], body["tracking"], len(body["history"])) == (
            False,
            False,
            1,
        )


def test_erasure_leaves_nothing_in_redis_nor_the_home(
    redis_home: Settings,  # noqa: F811 (fixture)
    private_redis: PrivateRedis,
    tmp_path: Path,
) -> None:
    user, bystander = users_with_history(redis_home)[:2]
    settings = with_experiment_and_crm(redis_home, tmp_path)
    pseudonyms = Pseudonymizer.from_settings(settings)
    pseudonym = pseudonyms.of(user)
    with (
        TestClient(create_app(settings)) as client,
        redis.Redis.from_url(private_redis.url) as raw,
    ):
        client.post("/events", json={"events": [event(user, "sku-000001"), event(bystander, "x")]})
        client.put(f"/users/{user}/consent", json={"personalization": True})
        assert client.get("/recommend", params={"user_id": user}).json()["source"] == "personalized"
        assert raw.exists(f"recserve:rec:{user}")  # the shared cache tier holds the list
        for someone in (user, bystander):
            served_and_clicked(client, someone)  # an exposure and a webhook delivery each
        wait_for(
            lambda: all(
                exposures_and_dead_letters(settings, u) == (1, 1) for u in (user, bystander)
            )
        )
        assert _redis_mentions(raw, user)  # feature hash, stream entry, cache, outbox body...
        assert raw.exists(f"recserve:consent:{pseudonym}")
        assert len(_redis_mentions(raw, pseudonym)) >= 3  # consent, exposure, delivery

        report = client.delete(f"/users/{user}").json()

        assert report["events_deleted"] == 2  # a view and a click
        assert report["online_rows_deleted"] == 1
        assert report["consent_deleted"] is True
        assert report["offline_rows_deleted"] > 0
        assert (report["exposures_deleted"], report["webhook_deliveries_deleted"]) == (1, 1)
        assert _redis_mentions(raw, user) == []
        assert _redis_mentions(raw, pseudonym) == []  # consent, exposures, outbox
        assert raw.keys(f"recserve:consent:{pseudonym}*") == []
        assert exposures_and_dead_letters(settings, user) == (0, 0)
        assert exposures_and_dead_letters(settings, bystander) == (1, 1)
        assert _redis_mentions(raw, bystander)  # others untouched
        assert _redis_mentions(raw, pseudonyms.of(bystander))
        assert _online(redis_home, user) is None
        assert {e.user_id for e in logged_events(settings)} == {bystander}
        assert batch_tables_holding(settings, user) == []
        after = client.get("/recommend", params={"user_id": user}).json()
        assert (after["cache"], after["fallback_reason"]) == (None, "unknown_user")


def _persisted_holding(directory: Path, needle: str) -> list[str]:
    """Files under Redis' ``dir`` (RDB snapshot, AOF base and increments) holding ``needle``."""
    return sorted(
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file() and needle.encode() in path.read_bytes()
    )


def _persistence_done(raw: redis.Redis, rdb_saves: int, aof_rewrites: int) -> bool:
    info = raw.info("persistence")
    return (
        info["rdb_saves"] > rdb_saves
        and info["aof_rewrites"] > aof_rewrites
        and not info["rdb_bgsave_in_progress"]
        and not info["aof_rewrite_in_progress"]
        and not info["aof_rewrite_scheduled"]
    )


def test_erasure_leaves_no_byte_of_the_user_in_redis_files(
    redis_home: Settings,  # noqa: F811 (fixture)
    private_redis: PrivateRedis,
) -> None:
    # No three characters in common with the payload's field names: LZF compression in the
    # RDB then keeps the id's first occurrence literal, so a scan of the files finds it.
    user = "Hq7ZpX2kVw9JmR4c"
    bystander = users_with_history(redis_home)[0]
    with (
        TestClient(create_app(redis_home)) as client,
        redis.Redis.from_url(private_redis.url) as raw,
    ):
        events = [event(user, "sku-000001"), event(user, "sku-000002"), event(bystander, "x")]
        assert client.post("/events", json={"events": events}).json()["accepted_count"] == 3
        wait_for(lambda: bool(_redis_mentions(raw, user)))
        raw.bgrewriteaof()  # the AOF's base (an RDB preamble) and a snapshot hold the user
        wait_for(lambda: not raw.info("persistence")["aof_rewrite_in_progress"])
        raw.save()
        assert {"dump.rdb"} <= set(_persisted_holding(private_redis.directory, user))
        info = raw.info("persistence")

        report = client.delete(f"/users/{user}").json()

        assert report["events_deleted"] == 2
        assert _redis_mentions(raw, user) == []
        wait_for(lambda: _persistence_done(raw, info["rdb_saves"], info["aof_rewrites"]))
        assert _persisted_holding(private_redis.directory, user) == []
        assert _persisted_holding(private_redis.directory, bystander)
        assert {e.user_id for e in logged_events(redis_home)} >= {bystander}
