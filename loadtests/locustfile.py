"""A realistic traffic mix for locust (``pip install -e ".[loadtest]"``); see loadtests/README.md.

    RECSERVE_HOME=/tmp/ml locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 \
        --headless -u 50 -r 10 -t 60s

* 80% ``GET /recommend`` for a Zipf-distributed user population taken from
  ``$RECSERVE_HOME/data/interactions.parquet``, ~5% of them users the model has never seen;
* 15% ``POST /events`` with one ``view`` of an item from the same data (this writes to the
  server's event log and features); if the server has no ``/events`` yet (404/405) the
  request is reported under a ``[skipped: ...]`` name as a success, not a failure;
* 5% content blocks for a user of the same population: half of them one slot
  (``GET /content-blocks/{slot}``), half a whole page (``GET /content-blocks?slots=...``). The
  slot ids are read from the slots file the server was started with,
  ``RECSERVE_CONTENT_SLOTS_FILE`` (default ``examples/content_slots.toml``, which fits the
  shop ``recserve demo`` generates); a missing or slot-less file stops locust at start-up.

locust's own figures are not the throughput benchmark: its client costs far more CPU per request
than the server does. ``python -m loadtests.bench`` measures throughput.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from locust import FastHttpUser, between, task

from loadtests.bench import zipf_user_stream
from loadtests.slots import slot_ids

_HOME = Path(os.environ.get("RECSERVE_HOME", ".recserve")).resolve()
_USERS, _ = zipf_user_stream(_HOME, 50_000, exponent=1.0, unknown_share=0.05)
_ITEMS = (
    pd.read_parquet(_HOME / "data" / "interactions.parquet", columns=["item_id"])["item_id"]
    .astype(str)
    .unique()
    .tolist()
)
_SLOTS = slot_ids(
    Path(os.environ.get("RECSERVE_CONTENT_SLOTS_FILE", "examples/content_slots.toml"))
)
_EVENT_IDS = itertools.count()
_RUN_ID = f"locust-{os.getpid()}-{int(time.time())}"


class Shopper(FastHttpUser):
    """One simulated client: mostly recommendations, some events, a few content blocks."""

    wait_time = between(0.05, 0.5)

    @task(80)
    def recommend(self) -> None:
        user_id = quote(random.choice(_USERS), safe="")
        self.client.get(f"/recommend?user_id={user_id}&k=10", name="GET /recommend")

    @task(15)
    def post_event(self) -> None:
        user_id = random.choice(_USERS)
        event = {
            "event_id": f"{_RUN_ID}-{next(_EVENT_IDS)}",
            "user_id": user_id,
            "item_id": random.choice(_ITEMS),
            "type": "view",
            "timestamp": time.time(),
        }
        with self.client.post(
            "/events", json={"events": [event]}, name="POST /events", catch_response=True
        ) as response:
            if response.status_code in (404, 405):
                # The endpoint is not there yet: not a server failure, so record it apart.
                response.request_meta["name"] = "POST /events [skipped: endpoint absent]"
                response.success()

    @task(5)
    def content_blocks(self) -> None:
        user_id = quote(random.choice(_USERS), safe="")
        if random.random() < 0.5:
            slot = quote(random.choice(_SLOTS), safe="")
            path, name = f"/content-blocks/{slot}?user_id={user_id}", "GET /content-blocks/{slot}"
        else:
            page = quote(",".join(_SLOTS), safe=",")
            path, name = f"/content-blocks?slots={page}&user_id={user_id}", "GET /content-blocks"
        self.client.get(path, name=name)
