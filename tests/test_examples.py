"""Every file shipped in ``examples/`` starts the service as the README says, on a shop made
by the demo's generator: loaded at start-up, then put to work."""

from __future__ import annotations

import tomllib
from pathlib import Path

from fastapi.testclient import TestClient

from app.api.main import create_app
from app.settings import Settings, WebhookSettings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_service_starts_with_every_example_and_uses_it(built_home: Settings) -> None:
    files = {path.name: path for path in EXAMPLES.iterdir() if path.is_file()}
    slots_file = files.pop("content_slots.toml")
    settings = built_home.model_copy(
        update={
            "experiments_file": files.pop("experiments.toml"),
            "content_slots_file": slots_file,
            "business_rules_file": files.pop("business_rules.toml"),
            "webhooks": WebhookSettings(endpoints_file=files.pop("webhooks.toml")),
        }
    )
    assert not files, f"examples no test starts the service with: {sorted(files)}"

    with TestClient(create_app(settings)) as client:
        experiments = client.get("/experiments").json()["experiments"]
        assert experiments
        assert all(e["running"] for e in experiments), experiments
        slots = [s["id"] for s in tomllib.loads(slots_file.read_text())["slots"]]
        page = client.get("/content-blocks", params={"slots": ",".join(slots), "user_id": "u1"})
        assert page.status_code == 200, page.text
        assert [b["slot"] for b in page.json()["blocks"]] == slots
        items = client.get("/recommend", params={"user_id": "u1", "k": 20, "fields": "categories"})
        assert all("grocery" not in i["categories"] for i in items.json()["items"])
