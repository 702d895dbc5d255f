"""Two API replicas, each standing in for a host (its own home and port), behind HAProxy
running the shipped deploy/haproxy/haproxy.cfg, sharing one Redis URL for every role (online
store, cache tier and its invalidations; a Redis of the module's own, then the Redis Cluster
every test shares) and one PostgreSQL of the module's own (the records of truth).

What must hold across hosts: a write through one replica shows in the next answer of the
other, experiment assignment is the same everywhere, a model published once reaches every
replica, a webhook is delivered once, an erasure empties every replica's cache. Failures, with
their figures printed: a replica killed under load is drained by HAProxy with few errors, and a
PostgreSQL crash and restart loses no acknowledged event or consent change.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
import orjson
import psycopg
import pytest

from app.settings import Settings
from loadtests.client import LoadSpec, recommend_requests, run_load, summarize
from loadtests.topology import SERVER_NAMES, SharedStores, Topology, replicas_behind_haproxy
from tests.api.experiment_support import two_arm_experiment
from tests.integration.conftest import (
    PrivateRedis,
    copy_home,
    materialize_into,
    users_with_history,
)
from tests.integration.private_postgres import PrivatePostgres, private_postgres
from tests.integration.private_server import owned_server
from tests.integration.test_read_your_writes import purchases, recommended_items
from tests.privacy.helpers import wait_for
from tests.security.test_model_reload import publish_variant
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.integration

EXPERIMENT = "replicas-ab"
PSEUDONYM_KEY = "replicas-test-pseudonym-key"
WEBHOOK_SECRET = "replicas-webhook-signing-secret"
# Requests to one replica within which its in-process tier must come to hold a user's list.
WARM_ATTEMPTS = 50


@pytest.fixture(scope="module", params=["one Redis", "Redis Cluster"])
def shared_redis_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The one Redis URL every replica is given, for every role: the topology's only Redis
    parameter. Every test of the module runs on a Redis of its own, then on the Redis Cluster
    every test shares (its seed URL, tests/conftest.py)."""
    if request.param == "Redis Cluster":
        yield request.getfixturevalue("redis_cluster_url")
        return
    with owned_server(PrivateRedis, tmp_path_factory.mktemp("replicas-redis") / "redis") as redis:
        yield redis.url


@pytest.fixture(scope="module")
def database() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def crm() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


@dataclass(frozen=True)
class Deployment:
    topology: Topology
    shared: SharedStores
    # With a history, so answered personalised; from the end of the list, away from the
    # users other modules change on the Redis Cluster every test shares.
    users: list[str]
    clients: list[httpx.Client]  # one per replica, straight to it
    lb: httpx.Client  # through HAProxy


@pytest.fixture(scope="module")
def deployment(
    built_home: Settings,
    shared_redis_url: str,
    database: PrivatePostgres,
    crm: Receiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    if shutil.which("haproxy") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("HAProxy is required on CI (.ci/run installs it)")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    root = tmp_path_factory.mktemp("replicas")
    # A schema per deployment: the module's PostgreSQL serves one deployment per Redis.
    schema = f"replicas_{uuid.uuid4().hex[:8]}"
    shared = SharedStores(shared_redis_url, database.url, schema, root / "models")
    shutil.copytree(built_home.model_root, shared.models_dir)
    # The build's features, materialised once into the shared Redis; each host a copy.
    first = copy_home(built_home, root / SERVER_NAMES[0])
    materialize_into(first, shared_redis_url)
    homes = [first.home, copy_home(first, root / SERVER_NAMES[1]).home]
    experiments = root / "experiments.toml"
    experiments.write_text(two_arm_experiment(EXPERIMENT, device="web"))
    endpoint = {"name": "crm", "url": crm.url, "secret": WEBHOOK_SECRET}
    env = {
        "RECSERVE_PRIVACY__PSEUDONYM_KEY": PSEUDONYM_KEY,
        "RECSERVE_EXPERIMENTS_FILE": str(experiments),
        "RECSERVE_WEBHOOKS__ENDPOINTS": json.dumps([{**endpoint, "events": ["engagement.click"]}]),
        "RECSERVE_WEBHOOKS__POLL_INTERVAL_SECONDS": "0.05",
        "RECSERVE_WEBHOOKS__BATCH_SIZE": "2",  # small batches: both replicas claim a share
        "RECSERVE_MODEL_POLL_SECONDS": "0.2",
    }
    with (
        replicas_behind_haproxy(homes, shared, root, extra_env=env) as topology,
        ExitStack() as clients,
    ):
        direct = [
            clients.enter_context(httpx.Client(base_url=replica.url, timeout=5.0))
            for replica in topology.replicas
        ]
        lb = clients.enter_context(httpx.Client(base_url=topology.balancer.url, timeout=5.0))
        yield Deployment(topology, shared, users_with_history(built_home)[::-1], direct, lb)


def held_locally(http: httpx.Client, user_id: str) -> list[str]:
    """Ask until the replica answers ``user_id`` from its in-process tier; the list."""
    for _ in range(WARM_ATTEMPTS):
        items, tier = recommended_items(http, user_id)
        if tier == "local":
            return items
    raise AssertionError(f"{http.base_url} never cached the list of {user_id}")


def test_haproxy_spreads_requests_round_robin(deployment: Deployment) -> None:
    served_by = [
        deployment.lb.get("/recommend", params={"user_id": "rr", "k": 1}).headers["X-Served-By"]
        for _ in range(10)
    ]
    assert Counter(served_by) == Counter(dict.fromkeys(SERVER_NAMES, 5))
    assert all(a != b for a, b in itertools.pairwise(served_by))


def test_an_event_posted_to_one_replica_changes_the_next_answer_of_the_other(
    deployment: Deployment,
) -> None:
    first, second = deployment.clients
    user = deployment.users[0]
    bought = held_locally(second, user)[:3]

    response = first.post("/events", json=purchases(user, bought))
    assert response.status_code == 200, response.text
    assert len(response.json()["accepted"]) == 3
    items, tier = recommended_items(second, user)

    assert set(items).isdisjoint(bought)
    assert tier != "local"


def test_experiment_assignment_is_the_same_on_every_replica(deployment: Deployment) -> None:
    users = [f"replicas-exp-{n}" for n in range(30)]
    variants: dict[str, set[str]] = {user: set() for user in users}
    for user in users:
        for http in deployment.clients:
            body = http.get("/recommend", params={"user_id": user, "device": "web"}).json()
            assert body["experiment_id"] == EXPERIMENT
            variants[user].add(body["variant"])

    assert all(len(seen) == 1 for seen in variants.values()), variants
    assert len({next(iter(seen)) for seen in variants.values()}) == 2  # both arms in use

    def report() -> list[dict[str, int]]:
        variants: list[dict[str, int]] = deployment.lb.get(
            f"/experiments/{EXPERIMENT}/report"
        ).json()["variants"]
        return variants

    # Every answer counted once, whichever replica served it; each user in one arm.
    wait_for(lambda: sum(v["exposures"] for v in report()) == 2 * len(users))
    assert sum(v["users"] for v in report()) == len(users)


def test_a_model_published_once_is_served_by_every_replica(deployment: Deployment) -> None:
    def served(http: httpx.Client) -> str:
        version: str = http.get("/recommend", params={"user_id": "u", "k": 1}).json()[
            "model_version"
        ]
        return version

    old = served(deployment.clients[0])
    # The trainer, wherever it runs, publishes once into the shared models directory.
    trainer = Settings(
        home=deployment.topology.replicas[0].home, models_dir=deployment.shared.models_dir
    )
    publish_variant(trainer, old, "v-replicas")

    wait_for(lambda: all(served(http) == "v-replicas" for http in deployment.clients))


def test_each_webhook_is_delivered_once_by_the_replicas_together(
    deployment: Deployment, crm: Receiver
) -> None:
    ids = [f"replicas-click-{n}-{uuid.uuid4().hex[:8]}" for n in range(20)]
    served_by = set()
    for event_id in ids:
        click = {
            "event_id": event_id,
            "user_id": "u-replicas-webhooks",
            "item_id": "sku-000002",
            "type": "click",
            "timestamp": time.time(),
            "context": {"recommendation_id": f"rec-{event_id}"},
        }
        response = deployment.lb.post("/events", json={"events": [click]})
        assert response.json()["accepted_count"] == 1
        served_by.add(response.headers["X-Served-By"])
    assert served_by == set(SERVER_NAMES)

    def delivered() -> Counter[str]:
        found = (orjson.loads(r.body)["data"]["event_id"] for r in crm.accepted())
        return Counter(event_id for event_id in found if event_id in ids)

    wait_for(lambda: len(delivered()) == len(ids))
    time.sleep(0.5)  # room for a second delivery to show up
    assert delivered() == Counter(dict.fromkeys(ids, 1))


def test_an_erasure_through_one_replica_empties_every_replica_cache(
    deployment: Deployment,
) -> None:
    first, second = deployment.clients
    user = deployment.users[1]
    for http in deployment.clients:
        held_locally(http, user)

    assert first.delete(f"/users/{user}").status_code == 200

    for http in (second, first):
        body = http.get("/recommend", params={"user_id": user}).json()
        assert (body["cache"], body["fallback_reason"]) == (None, "unknown_user")


# The kill: HAProxy under an open-loop load of /recommend, one replica SIGKILLed mid-way.
LOAD_RATE = 100  # requests/s, well under what one replica serves alone
LOAD_CONNECTIONS = 8
LOAD_SECONDS = 6.0
KILL_AFTER_SECONDS = 2.5  # from the load's submission (its process takes ~1 s to start)


def test_a_replica_killed_under_load_is_drained_by_haproxy(deployment: Deployment) -> None:
    victim = deployment.topology.replicas[1]
    balancer = deployment.topology.balancer
    requests = recommend_requests(deployment.users[2:])
    spec = LoadSpec(balancer.port, requests, LOAD_CONNECTIONS, LOAD_SECONDS, LOAD_RATE)
    try:
        with ThreadPoolExecutor(1) as pool:
            load = pool.submit(run_load, spec)
            time.sleep(KILL_AFTER_SECONDS)
            victim.kill()
            drained_after = balancer.wait_for({victim.name: "DOWN"}, timeout=10)
            result = load.result()
        summary = summarize(result)
        print(
            f"\nreplica killed under {LOAD_RATE} requests/s over {LOAD_CONNECTIONS} connections: "
            f"{summary['errors']} errors of {len(result.latencies_ms) + len(result.failed_s)} "
            f"requests, statuses {summary['statuses']}, drained by HAProxy "
            f"{drained_after:.2f} s after the kill, latency p50 {summary['p50_ms']} ms "
            f"p99 {summary['p99_ms']} ms max {summary['max_ms']} ms"
        )
        # At most the requests in flight on the dead replica fail; HAProxy retries those it can.
        assert result.errors <= LOAD_CONNECTIONS, summary
        assert len(result.latencies_ms) >= 0.95 * LOAD_RATE * LOAD_SECONDS, summary
        assert balancer.server_states()[deployment.topology.replicas[0].name] == "UP"
    finally:
        # Back on its port, the replica rejoins the rotation after two passed checks.
        victim.start()
        rejoined_after = balancer.wait_for({victim.name: "UP"}, timeout=15)
        print(f"restarted replica back in rotation {rejoined_after:.2f} s after it answered")


@dataclass
class Writes:
    """What a client sent during the database restart, and what was acknowledged."""

    acknowledged_events: list[str] = field(default_factory=list)
    acknowledged_consent: dict[str, bool] = field(default_factory=dict)  # the last per user
    acknowledged_at: list[float] = field(default_factory=list)
    failed_at: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)


def write_until(stop: threading.Event, http: httpx.Client, writes: Writes) -> None:
    """One event and one consent change at a time, through the balancer, until ``stop``."""
    n = 0
    while not stop.is_set():
        n += 1
        user = f"pg-restart-{n % 10}"
        event_id = f"pg-restart-{uuid.uuid4().hex}"
        event = {"event_id": event_id, "user_id": user, "item_id": "sku-000003"}
        event |= {"type": "view", "timestamp": time.time()}
        requests = [
            (http.build_request("POST", "/events", json={"events": [event]}), event_id),
            (
                http.build_request(
                    "PUT", f"/users/{user}/consent", json={"personalization": n % 2 == 0}
                ),
                None,
            ),
        ]
        for request, acked_event in requests:
            try:
                response = http.send(request)
            except httpx.TransportError:  # counted as a status 0
                response = httpx.Response(0)
            writes.statuses[response.status_code] += 1
            if response.status_code != 200:
                writes.failed_at.append(time.monotonic())
                continue
            writes.acknowledged_at.append(time.monotonic())
            if acked_event is None:
                writes.acknowledged_consent[user] = n % 2 == 0
            else:
                assert response.json()["accepted"] == [acked_event]
                writes.acknowledged_events.append(acked_event)


# From the restart until writes succeed again: the pools reconnect on their next use.
RECOVERY_SECONDS = 5.0


def test_a_postgresql_restart_loses_no_acknowledged_write(
    deployment: Deployment, database: PrivatePostgres
) -> None:
    writes, stop = Writes(), threading.Event()
    writer = threading.Thread(target=write_until, args=(stop, deployment.lb, writes))
    writer.start()
    try:
        time.sleep(1.5)
        stopped_at = time.monotonic()
        database.stop_immediately()  # as a crash: no checkpoint, recovery from the WAL
        time.sleep(1.0)
        database.start()
        restarted_at = time.monotonic()
        time.sleep(RECOVERY_SECONDS + 1.0)
    finally:
        stop.set()
        writer.join(10)

    recovered = [t for t in writes.acknowledged_at if t > restarted_at]
    print(
        f"\nPostgreSQL down {restarted_at - stopped_at:.2f} s (immediate stop, restart) under "
        f"one writer: {len(writes.failed_at)} failed writes of {writes.statuses.total()}, "
        f"statuses {dict(writes.statuses)}, first write acknowledged "
        f"{(min(recovered) - restarted_at) if recovered else float('nan'):.2f} s after restart, "
        f"{len(writes.acknowledged_events)} events and {len(writes.acknowledged_consent)} users' "
        "consent acknowledged"
    )
    schema = deployment.shared.schema
    with psycopg.connect(database.url, options=f"-c search_path={schema}") as connection:
        stored = connection.execute(
            "SELECT event_id FROM events WHERE event_id = ANY(%s)", (writes.acknowledged_events,)
        ).fetchall()
    assert {row[0] for row in stored} == set(writes.acknowledged_events)
    for user, personalization in writes.acknowledged_consent.items():
        consent = deployment.lb.get(f"/users/{user}/consent").json()
        assert consent["personalization"] is personalization, user
    # The outage was felt, only while it lasted, and writes came back after it.
    assert writes.failed_at
    assert all(stopped_at <= t <= restarted_at + RECOVERY_SECONDS for t in writes.failed_at)
    assert recovered
