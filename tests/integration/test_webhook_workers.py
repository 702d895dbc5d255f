"""``recserve serve --workers 2`` with a webhook endpoint: both workers enqueue into one outbox
and both run a delivery worker, yet every event reaches the receiver exactly once."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import httpx
import orjson
import pytest

from app.settings import Settings
from app.webhooks.signing import DELIVERY_HEADER, verify
from loadtests.server import free_port, recserve_argv, running
from tests.integration.conftest import copy_home
from tests.webhooks.conftest import wait_until
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.integration

SECRET = "two-workers-signing-secret"
EVENTS = 30


def test_two_workers_deliver_every_event_once(
    built_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = copy_home(built_home, tmp_path_factory.mktemp("webhook-workers") / "home")
    crm = Receiver()
    crm.start()
    endpoint = {"name": "crm", "url": crm.url, "secret": SECRET, "events": ["engagement.click"]}
    env = {
        "RECSERVE_HOME": str(home.home),
        "RECSERVE_WEBHOOKS__ENDPOINTS": json.dumps([endpoint]),
        "RECSERVE_WEBHOOKS__POLL_INTERVAL_SECONDS": "0.05",
        "RECSERVE_WEBHOOKS__BATCH_SIZE": "2",  # small batches: both workers get a share
    }
    port = free_port()
    try:
        with running(recserve_argv(port, workers=2), port, env=env):
            for n in range(EVENTS):
                # A new connection each time, so both workers take requests.
                response = httpx.post(
                    f"http://127.0.0.1:{port}/events",
                    json={"events": [_click(f"w{n}")]},
                    timeout=5.0,
                )
                assert response.status_code == 200, response.text
            asyncio.run(wait_until(lambda: len(crm.accepted()) >= EVENTS, timeout=20))
            time.sleep(0.5)  # room for a duplicate to show up
    finally:
        crm.stop()

    received = crm.attempts()
    assert Counter(orjson.loads(r.body)["data"]["event_id"] for r in received) == Counter(
        {f"w{n}": 1 for n in range(EVENTS)}
    )
    assert len({r.headers[DELIVERY_HEADER] for r in received}) == EVENTS
    assert all(verify(SECRET, r.headers, r.body) for r in received)


def _click(event_id: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "user_id": "u-webhooks",
        "item_id": "sku-000002",
        "type": "click",
        "timestamp": time.time(),
        "context": {"recommendation_id": f"rec-{event_id}"},
    }
