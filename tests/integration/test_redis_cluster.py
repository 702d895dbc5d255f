"""A real ``recserve serve`` (uvicorn over HTTP) with every Redis role on a Redis Cluster:
Feast's online store, the cache tier and its invalidations, the event stream, consent,
exposures, the webhook outbox and availability overrides all take the cluster's seed URL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pyarrow.parquet as pq
import pytest
import redis

from app.features.store import apply_and_materialize
from app.settings import Settings
from feature_repo.definitions import EVENT_TIMESTAMP, offline_file
from tests.fixtures.redis_cluster import RedisClusterProcesses
from tests.integration.conftest import copy_home, serve, users_with_history
from tests.integration.test_privacy_redis import _redis_mentions
from tests.integration.test_read_your_writes import purchases, recommended_items

pytestmark = [pytest.mark.integration, pytest.mark.redis]

# Answers asked for before the write: the list is then in the in-process and the Redis tier.
WARM_UP_REQUESTS = 5
CHECKS = 10


@pytest.fixture(scope="module")
def cluster_home(
    built_home: Settings,
    redis_cluster: RedisClusterProcesses,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    """A copy of the built home whose online features are materialized into the cluster."""
    home = copy_home(built_home, tmp_path_factory.mktemp("cluster") / "home")
    settings = home.model_copy(update={"redis_url": redis_cluster.url})
    # Feast copies the rows stamped within the window it is given: the build's own stamp.
    table = offline_file(settings.offline_dir, "user_behaviour")
    stamped = pq.read_table(table, columns=[EVENT_TIMESTAMP]).column(0)[0].as_py()
    apply_and_materialize(settings, as_of=stamped)
    return settings


def master_clients(cluster: RedisClusterProcesses) -> Iterator[redis.Redis]:
    for node in cluster.masters():
        yield redis.Redis(host="127.0.0.1", port=node.port)


def mentions_on_masters(cluster: RedisClusterProcesses, text: str) -> dict[int, list[bytes]]:
    """Keys holding ``text`` in their name or value, by master port (masters that have some)."""
    found = {}
    for client in master_clients(cluster):
        with client:
            if keys := _redis_mentions(client, text):
                found[client.connection_pool.connection_kwargs["port"]] = keys
    return found


def test_server_on_a_cluster_recommends_takes_events_and_erases_on_every_master(
    cluster_home: Settings, redis_cluster: RedisClusterProcesses
) -> None:
    user, bystander = users_with_history(cluster_home)[:2]
    with (
        serve(
            cluster_home.home,
            redis_url=redis_cluster.url,
            # The request path's 50 ms bound is for production; on a loaded test machine a slow
            # call would open a breaker and skip a step this test checks (e.g. the erasure's).
            extra_env={"RECSERVE_REDIS__SOCKET_TIMEOUT_SECONDS": "1.0"},
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=5.0) as http,
    ):
        answers = [recommended_items(http, user) for _ in range(WARM_UP_REQUESTS)]
        assert {tier for _, tier in answers} & {"local", "redis"}, "no answer came from a cache"
        bought = answers[0][0][:3]
        written = http.post("/events", json=purchases(user, bought))
        assert written.status_code == 200, written.text
        assert len(written.json()["accepted"]) == 3
        other = http.post("/events", json=purchases(bystander, [f"x-{uuid.uuid4().hex}"]))
        assert other.status_code == 200, other.text

        after = [recommended_items(http, user) for _ in range(CHECKS)]
        # Read-your-writes: no tier serves the list from before the purchases.
        assert [set(bought) & set(items) for items, _ in after] == [set()] * CHECKS
        assert after[0][1] != "local"

        held = mentions_on_masters(redis_cluster, user)
        # Feature hash, stream entries, cached lists: spread over more than one master.
        assert len(held) >= 2, held
        report = http.delete(f"/users/{user}")
        assert report.status_code == 200, report.text
        assert report.json()["events_deleted"] == 3
        assert report.json()["online_rows_deleted"] == 1

        assert mentions_on_masters(redis_cluster, user) == {}
        assert mentions_on_masters(redis_cluster, bystander)  # others untouched
        gone = http.get("/recommend", params={"user_id": user}).json()
        assert (gone["cache"], gone["fallback_reason"]) == (None, "unknown_user")
