"""Webhooks through the real app (built home, real SQLite outbox, real delivery worker in the
lifespan) and a real local HTTP receiver: POST /events never waits on the receiver, dead
letters are listed and replayed by the admin API and the CLI."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.cli import main as recserve
from app.settings import Settings, WebhookSettings
from app.webhooks.config import WebhookConfigError
from app.webhooks.outbox import Outbox, run_with_outbox
from app.webhooks.signing import DELIVERY_HEADER, verify
from tests.webhooks.conftest import make_delivery, wait_until
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.integration

SECRET = "api-test-signing-secret"


@pytest.fixture(scope="module")
def crm() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture(scope="module")
def settings(
    built_home: Settings, tmp_path_factory: pytest.TempPathFactory, crm: Receiver
) -> Settings:
    home = tmp_path_factory.mktemp("webhooks") / "home"
    shutil.copytree(built_home.home, home)
    webhooks = WebhookSettings.model_validate(
        {
            "endpoints": [
                {
                    "name": "crm",
                    "url": crm.url,
                    "secret": SECRET,
                    "events": ["engagement.click", "engagement.purchase"],
                    "timeout_seconds": 1.0,
                }
            ],
            "max_attempts": 3,
            "backoff_initial_seconds": 0.05,
            "backoff_max_seconds": 0.2,
            "lease_seconds": 5,
            "poll_interval_seconds": 0.02,
        }
    )
    return built_home.model_copy(update={"home": home, "webhooks": webhooks})


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def click(event_id: str, kind: str = "click") -> dict[str, object]:
    return {
        "event_id": event_id,
        "user_id": "webhook-user",
        "item_id": "sku-000001",
        "type": kind,
        "timestamp": time.time(),
        "context": {"recommendation_id": f"rec-{event_id}"},
    }


def delivered_event_ids(crm: Receiver) -> list[str]:
    return [orjson.loads(r.body)["data"]["event_id"] for r in crm.accepted()]


def wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    asyncio.run(wait_until(condition, timeout))


def test_post_events_returns_at_once_while_the_receiver_hangs(
    client: TestClient, crm: Receiver
) -> None:
    assert client.post("/events", json={"events": [click("warm-up", "view")]}).status_code == 200
    crm.delay_seconds = 5.0
    try:
        started = time.perf_counter()
        response = client.post("/events", json={"events": [click("during-hang")]})
        elapsed = time.perf_counter() - started
    finally:
        crm.delay_seconds = 0.0  # the attempt in flight still hangs; the retry is answered
    assert response.status_code == 200
    assert response.json()["accepted"] == ["during-hang"]
    assert elapsed < 0.2, f"POST /events took {elapsed * 1000:.0f} ms"

    wait(lambda: "during-hang" in delivered_event_ids(crm))
    [request] = [r for r in crm.accepted() if b"during-hang" in r.body]
    assert verify(SECRET, request.headers, request.body)
    payload = orjson.loads(request.body)
    assert payload["type"] == "engagement.click"
    assert payload["data"]["recommendation_id"] == "rec-during-hang"
    assert "warm-up" not in delivered_event_ids(crm)  # a view is not engagement


def test_dead_letters_are_listed_and_replayed_by_the_admin_api(
    client: TestClient, crm: Receiver
) -> None:
    def parked() -> list[dict[str, Any]]:
        letters = client.get("/admin/webhooks/dead-letters").json()["dead_letters"]
        return [one for one in letters if one["payload"]["data"]["event_id"] == "refused"]

    crm.status_for = lambda _number: 500
    try:
        response = client.post("/events", json={"events": [click("refused", "purchase")]})
        assert response.status_code == 200
        wait(lambda: bool(parked()))
    finally:
        crm.status_for = lambda _number: 200
    [letter] = parked()
    assert (letter["endpoint"], letter["kind"], letter["attempts"]) == (
        "crm",
        "engagement.purchase",
        3,
    )
    assert letter["last_error"] == "HTTP 500"
    assert "refused" not in delivered_event_ids(crm)

    replay = client.post("/admin/webhooks/replay", json={"delivery_ids": [letter["delivery_id"]]})
    assert replay.status_code == 200
    assert replay.json() == {"replayed": 1}
    wait(lambda: "refused" in delivered_event_ids(crm))
    assert parked() == []
    [request] = [r for r in crm.accepted() if b'"refused"' in r.body]
    assert request.headers[DELIVERY_HEADER] == letter["delivery_id"]  # same id after replay
    metrics = client.get("/metrics").text
    assert 'recserve_webhook_dead_letters_total{endpoint="crm"}' in metrics


def test_replay_rejects_a_malformed_body(client: TestClient) -> None:
    response = client.post("/admin/webhooks/replay", json={"ids": ["x"]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "ids"]


def test_cli_lists_and_replays_dead_letters(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def park(outbox: Outbox) -> None:
        await outbox.enqueue([make_delivery("cli-1", endpoint="gone")])
        [delivery] = await outbox.claim("cli-test", limit=1, lease_seconds=30)
        await outbox.dead_letter(delivery.delivery_id, "cli-test", error="HTTP 410")

    cli_settings = Settings(home=settings.home.parent / "cli-home")
    run_with_outbox(cli_settings, park)
    monkeypatch.setenv("RECSERVE_HOME", str(cli_settings.home))

    assert recserve(["webhooks", "dead-letters"]) == 0
    assert "cli-1  gone  engagement.click  attempts=1" in capsys.readouterr().out
    assert recserve(["webhooks", "replay"]) == 2  # neither --id nor --all
    assert recserve(["webhooks", "replay", "--id", "cli-1"]) == 0
    assert "replayed 1 dead letter(s)" in capsys.readouterr().out
    assert recserve(["webhooks", "dead-letters"]) == 0
    assert "0 dead letter(s)" in capsys.readouterr().out


def test_a_bad_endpoint_refuses_start_up(built_home: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "webhooks.toml"
    bad.write_text('[[endpoints]]\nname = "crm"\nurl = "not a url"\nsecret = "x"\nevents = []\n')
    settings = built_home.model_copy(update={"webhooks": WebhookSettings(endpoints_file=bad)})
    with (
        pytest.raises(WebhookConfigError, match="endpoint #1: url"),
        TestClient(create_app(settings)),
    ):
        pass
