"""Stores that read but refuse writes: readiness says so, and writes recover without a restart.
Real ASGI app, real SQLite event log and Feast SQLite online store, on a copy of the built home.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.api.main import create_app
from app.features.store import sqlite_path
from app.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def home_copy(built_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    target = tmp_path_factory.mktemp("write-failures") / "home"
    shutil.copytree(built_home.home, target)
    return Settings(home=target)


@pytest.fixture
def client(home_copy: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(home_copy)) as test_client:
        yield test_client


def post_view(client: TestClient, event_id: str, item_id: str, copies: int = 1) -> dict[str, Any]:
    events = [
        {
            "event_id": event_id if n == 0 else f"{event_id}-{n}",
            "user_id": "write-user",
            "item_id": item_id,
            "type": "view",
            "timestamp": time.time(),
            "context": {"padding": "p" * 4000},
        }
        for n in range(copies)
    ]
    response = client.post("/events", json={"events": events})
    body: dict[str, Any] = response.json()
    body["status"] = response.status_code
    return body


def readiness(client: TestClient, name: str) -> tuple[bool, bool, str]:
    body = client.get("/readyz").json()
    state = body["dependencies"][name]
    return body["degraded"], state["ok"], state["detail"]


def history(client: TestClient) -> tuple[str, ...]:
    engine = client.app.state.services.engine  # type: ignore[attr-defined]
    user = engine.features.get_user("write-user")
    return () if user is None else tuple(user.history_items)


def test_a_read_only_online_store_handle_is_replaced_and_readiness_follows(
    client: TestClient, home_copy: Settings
) -> None:
    assert post_view(client, "wf-1", "sku-000001")["accepted"] == ["wf-1"]
    assert readiness(client, "profile_updates")[:2] == (False, True)
    # The state a read-only spell of the file leaves: SQLite opened the handle read-only, and
    # it stays so after the file is writable again.
    store = client.app.state.services.events._updater.store  # type: ignore[attr-defined]
    online = store._store.provider.online_store
    online._conn.close()
    online._conn = sqlite3.connect(
        f"file:{sqlite_path(home_copy)}?mode=ro", uri=True, check_same_thread=False
    )

    failed = post_view(client, "wf-2", "sku-000002")

    assert failed["accepted"] == ["wf-2"]  # durable in the log all the same
    degraded, ok, detail = readiness(client, "profile_updates")
    assert (degraded, ok) == (True, False)
    assert "readonly" in detail

    recovered = post_view(client, "wf-3", "sku-000003")

    assert recovered["accepted"] == ["wf-3"]
    assert readiness(client, "profile_updates")[:2] == (False, True)
    assert history(client)[-1] == "sku-000003"


def test_a_full_event_log_makes_readiness_degraded_until_an_append_succeeds(
    client: TestClient,
) -> None:
    log = client.app.state.services.events.event_log  # type: ignore[attr-defined]
    assert readiness(client, "event_log_writes")[:2] == (False, True)
    pages = log._db.locked(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
    log._db.locked(lambda c: c.execute(f"PRAGMA max_page_count = {pages}"))  # a full disk

    refused = post_view(client, "wf-full-1", "sku-000004", copies=200)  # 800 KB

    assert refused["status"] == 503
    degraded, ok, detail = readiness(client, "event_log_writes")
    assert (degraded, ok) == (True, False)
    assert "full" in detail
    assert readiness(client, "event_log")[1] is True  # it still reads

    log._db.locked(lambda c: c.execute("PRAGMA max_page_count = 1073741823"))
    assert post_view(client, "wf-full-2", "sku-000005")["accepted"] == ["wf-full-2"]
    assert readiness(client, "event_log_writes")[:2] == (False, True)


def test_a_profile_update_waits_out_another_writers_lock_and_counts_the_retries(
    client: TestClient, home_copy: Settings
) -> None:
    assert post_view(client, "wf-warm", "sku-000005")["accepted"] == ["wf-warm"]
    retries_before = REGISTRY.get_sample_value("recserve_events_profile_update_retries_total")
    holder = sqlite3.connect(sqlite_path(home_copy), timeout=5, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # another worker's write, longer than the busy timeout
    release = threading.Timer(0.25, holder.commit)
    release.start()
    try:
        answer = post_view(client, "wf-locked", "sku-000006")
    finally:
        release.join()
        holder.close()

    assert answer["accepted"] == ["wf-locked"]
    assert history(client)[-1] == "sku-000006"  # updated once the lock was gone
    assert readiness(client, "profile_updates")[:2] == (False, True)
    retries = REGISTRY.get_sample_value("recserve_events_profile_update_retries_total")
    assert (retries or 0) > (retries_before or 0)
