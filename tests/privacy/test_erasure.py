"""``DELETE /users/{id}`` and the export on embedded defaults: afterwards no store holds the
user (event log, Feast online store, cache, consent store, batch tables, experiment exposures,
webhook outbox), and a rebuild from the same source, which still holds them, leaves no trace of
them either."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.features.client import FeastFeatureClient
from app.privacy.consent_sqlite import CONSENT_FILE, SqliteConsentStore
from app.privacy.pseudonym import Pseudonymizer
from app.privacy.tombstones import ErasureList
from app.settings import Settings
from app.webhooks.outbox import SQLITE_FILE as OUTBOX_FILE
from tests.privacy.helpers import (
    EXPERIMENT,
    batch_tables_holding,
    event,
    exposures_and_dead_letters,
    logged_events,
    served_and_clicked,
    wait_for,
    with_experiment_and_crm,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home(built_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    target = tmp_path_factory.mktemp("erasure") / "home"
    shutil.copytree(built_home.home, target)
    return with_experiment_and_crm(Settings(home=target), target.parent)


@pytest.fixture(scope="module")
def client(home: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(home)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def two_users(home: Settings) -> tuple[str, str]:
    """Two users with history and attributes: the one erased, and a bystander."""
    interactions = pd.read_parquet(home.data_dir / "interactions.parquet")
    attributes = set(pd.read_parquet(home.data_dir / "users.parquet")["user_id"])
    both = [u for u in sorted(interactions["user_id"].unique()) if u in attributes]
    return both[0], both[1]


def _online(home: Settings, user_id: str) -> object:
    client = FeastFeatureClient.from_settings(home)
    try:
        return client.get_user(user_id)
    finally:
        client.close()


def _consent_rows(home: Settings, user_id: str) -> tuple[object, list[object]]:
    async def read() -> tuple[object, list[object]]:
        store = SqliteConsentStore(home.privacy_dir / CONSENT_FILE)
        key = Pseudonymizer.from_settings(home).of(user_id)
        try:
            return await store.get(key), list(await store.history(key))
        finally:
            await store.close()

    return asyncio.run(read())


def _event_parts(home: Settings, users: tuple[str, str]) -> None:
    """A Parquet part of the event log's batch copy holding both users (as the sink writes)."""
    parts = home.event_parts_dir
    parts.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"event_id": ["p1", "p2"], "user_id": list(users), "item_id": ["a", "b"]})
    frame.to_parquet(parts / "part-test.parquet")


def test_export_then_erasure_leaves_the_user_in_no_store(
    client: TestClient, home: Settings, two_users: tuple[str, str]
) -> None:
    user, bystander = two_users
    _event_parts(home, two_users)
    posted = client.post(
        "/events", json={"events": [event(user, "sku-000003"), event(bystander, "sku-000004")]}
    )
    assert posted.json()["accepted_count"] == 2
    assert client.put(f"/users/{user}/consent", json={"tracking": True}).status_code == 200
    assert client.get("/recommend", params={"user_id": user}).json()["source"] == "personalized"
    assert client.get("/recommend", params={"user_id": user}).json()["cache"] == "local"
    for someone in two_users:
        served_and_clicked(client, someone)
    # The CRM refuses: each click's delivery is dead-lettered after its one attempt.
    wait_for(lambda: all(exposures_and_dead_letters(home, u) == (1, 1) for u in two_users))

    export = client.get(f"/users/{user}/export").json()
    assert export["consent"] == {"personalization": True, "tracking": True}
    assert [h["changes"] for h in export["consent_history"]] == [{"tracking": True}]
    assert export["profile"]["user_id"] == user
    assert export["profile"]["history_items"]
    assert [e["type"] for e in export["events"]] == ["view", "click"]
    [exposure] = export["exposures"]
    assert exposure["experiment_id"] == EXPERIMENT
    assert exposure["variant"] in {"control", "treatment"}
    assert abs(exposure["served_at"] - time.time()) < 60
    assert {"data/interactions.parquet", "data/users.parquet", "parts/part-test.parquet"} <= set(
        export["offline"]
    )
    assert all(row["user_id"] == user for rows in export["offline"].values() for row in rows)
    assert export["erased_at"] is None

    response = client.delete(f"/users/{user}")

    assert response.status_code == 200
    report = response.json()
    assert report["events_deleted"] == 2
    assert report["online_rows_deleted"] > 0
    assert report["offline_rows_deleted"] > 0
    assert report["consent_deleted"] is True
    assert (report["exposures_deleted"], report["webhook_deliveries_deleted"]) == (1, 1)
    # Event log
    assert {e.user_id for e in logged_events(home)} == {bystander}
    # Feast online store (every user view)
    assert _online(home, user) is None
    assert _online(home, bystander) is not None
    # Cache: nothing cached is served; the user is unknown now
    after = client.get("/recommend", params={"user_id": user}).json()
    assert (after["cache"], after["source"], after["fallback_reason"]) == (
        None,
        "popular",
        "unknown_user",
    )
    # Consent store: nothing but the defaults
    assert _consent_rows(home, user) == (None, [])
    # Batch tables: ingested data, offline feature tables, event parts
    assert batch_tables_holding(home, user) == []
    assert batch_tables_holding(home, bystander)
    # Experiment exposures and webhook dead letters (bodies hold the raw id): the bystander's stay
    assert exposures_and_dead_letters(home, user) == (0, 0)
    assert exposures_and_dead_letters(home, bystander) == (1, 1)
    # Not even in the databases' free pages or journals, neither the id nor its pseudonym
    pseudonym = Pseudonymizer.from_settings(home).of(user)
    for path in [
        *home.feast_dir.glob("online.db*"),
        *home.events_dir.glob("events.db*"),
        *home.webhooks_dir.glob("outbox.db*"),
        *home.experiments_dir.glob("exposures.db*"),
    ]:
        assert user.encode() not in path.read_bytes(), path.name
        assert pseudonym.encode() not in path.read_bytes(), path.name
    # Erasure list: the pseudonym only
    erasure_list = ErasureList(home.privacy_dir)
    assert Pseudonymizer.from_settings(home).of(user) in erasure_list.erased()
    assert user not in erasure_list.path.read_text()
    # Export: nothing held but the erasure's date
    again = client.get(f"/users/{user}/export").json()
    assert again["profile"] is None
    assert again["events"] == []
    assert again["offline"] == {}
    assert again["consent_history"] == []
    assert again["exposures"] == []
    assert again["erased_at"] == report["erased_at"]
    # Idempotent
    assert client.delete(f"/users/{user}").json()["events_deleted"] == 0


def test_a_build_after_erasure_has_no_trace_of_the_user(
    client: TestClient, home: Settings, two_users: tuple[str, str], shop_source: Path
) -> None:
    from app.training.pipeline import build

    user, bystander = two_users
    assert client.delete(f"/users/{user}").status_code == 200
    source_users = pd.read_csv(shop_source / "shop.inter", sep="\t", dtype=str).iloc[:, 0]
    assert user in set(source_users)  # the source still holds them

    result = build(home, shop_source, tuning_budget_seconds=3)

    assert batch_tables_holding(home, user) == []
    assert batch_tables_holding(home, bystander)
    for path in (home.data_dir / "quarantine").glob("*.csv"):
        assert user not in path.read_text()
    assert _online(home, user) is None
    assert _online(home, bystander) is not None
    for path in result.model_dir.iterdir():  # tokens, items, popular list, manifest...
        assert user.encode() not in path.read_bytes(), path.name


def test_an_erasure_stopped_by_an_unreachable_outbox_answers_503_and_a_repeat_completes_it(
    built_home: Settings, tmp_path: Path, two_users: tuple[str, str]
) -> None:
    """The outbox is the last store erased before the cache: its failure must surface as an
    incomplete erasure (503), never as a 500 or a silent success."""
    target = tmp_path / "home"
    shutil.copytree(built_home.home, target)
    settings = Settings(home=target, events={"sqlite_busy_timeout_ms": 50})
    user = two_users[0]
    with TestClient(create_app(settings)) as client:
        posted = client.post("/events", json={"events": [event(user, "sku-000003")]})
        assert posted.json()["accepted_count"] == 1
        # Another process holds the outbox's write lock past the busy timeout.
        settings.webhooks_dir.mkdir(parents=True, exist_ok=True)
        holder = sqlite3.connect(settings.webhooks_dir / OUTBOX_FILE, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            stopped = client.delete(f"/users/{user}")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        repeated = client.delete(f"/users/{user}")

    assert stopped.status_code == 503
    assert "erasure incomplete" in stopped.text
    assert "OutboxUnavailable" in stopped.text
    assert repeated.status_code == 200
    assert repeated.json()["events_deleted"] == 0  # deleted by the first attempt
