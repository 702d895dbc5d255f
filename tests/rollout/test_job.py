"""One look of the rollout job at a time, in-process: it promotes on the test's word, rolls back
a challenger the workers refused to load, records a publish made outside it, and announces each
decision through the real webhook outbox."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.artifacts import (
    MANIFEST_FILE,
    challenger_version,
    current_version,
    point_challenger,
    point_current,
    read_manifest,
)
from app.events.log_sqlite import SqliteEventLog
from app.experiments.attribution import VariantCounts
from app.privacy.pseudonym import Pseudonymizer
from app.rollout.actions import RolloutContext
from app.rollout.job import RolloutJob
from app.rollout.store import SqliteRolloutStore
from app.settings import Settings, WebhookEndpointSpec
from app.webhooks.outbox import Outbox, open_outbox
from app.webhooks.publisher import WebhookPublisher
from tests.integration.conftest import copy_home

COUNTS: dict[str, VariantCounts] = {}


async def _counts(_rollout_id: str) -> dict[str, VariantCounts]:
    return COUNTS


def _publish_copy(settings: Settings, version: str, new_version: str) -> None:
    models = settings.model_root
    shutil.copytree(models / version, models / new_version)
    manifest = read_manifest(models / new_version).model_copy(update={"version": new_version})
    (models / new_version / MANIFEST_FILE).write_text(manifest.model_dump_json())


def _job(settings: Settings, outbox: Outbox, refusal: str | None = None) -> RolloutJob:
    endpoint = WebhookEndpointSpec.model_validate(
        {
            "name": "crm",
            "url": "http://127.0.0.1:9/hooks",
            "secret": "rollout-test-secret-0123",
            "events": ["model.promoted", "model.rolled_back"],
        }
    )
    publisher = WebhookPublisher(outbox, [endpoint], Pseudonymizer.from_settings(settings))
    store = SqliteRolloutStore(settings.rollout_dir / "rollout.db")
    return RolloutJob(
        RolloutContext(settings, store, publisher.notify_model_change),
        _counts,
        SqliteEventLog(settings.events_dir / "events.db", busy_timeout_ms=1000),
        lambda _version: refusal,
    )


@pytest.fixture
def challenged(built_home: Settings, tmp_path: Path) -> tuple[Settings, str, str]:
    settings = copy_home(built_home, tmp_path / "home")
    champion = current_version(settings.model_root)
    assert champion is not None
    _publish_copy(settings, champion, "next")
    point_challenger(settings.model_root, "next")
    return settings, champion, "next"


async def _sent(outbox: Outbox) -> list[str]:
    claimed = await outbox.claim("test", limit=10, lease_seconds=30)
    return [json.loads(delivery.body)["type"] for delivery in claimed]


async def test_a_better_challenger_is_promoted_and_announced(
    challenged: tuple[Settings, str, str],
) -> None:
    settings, champion, challenger = challenged
    outbox = open_outbox(settings)
    job = _job(settings, outbox)
    COUNTS.clear()
    assert await job.look_once()
    store = SqliteRolloutStore(settings.rollout_dir / "rollout.db")
    (rollout,) = store.rollouts(5)
    assert rollout.status == "running"
    assert rollout.last_look["verdict"] == "continue"
    COUNTS.update(
        champion=VariantCounts(impressions=3000, clicks=300),
        challenger=VariantCounts(impressions=3000, clicks=390),
    )
    await job.look_once()
    (rollout,) = store.rollouts(5)
    assert (rollout.status, rollout.decided_by) == ("promoted", "test")
    assert rollout.last_look["arms"]["challenger"] == {"successes": 390, "impressions": 3000}
    assert current_version(settings.model_root) == challenger
    assert challenger_version(settings.model_root) is None
    changes = [(c.kind, c.from_version, c.to_version) for c in store.changes(5)]
    assert changes == [("promotion", champion, challenger), ("publish", None, champion)]
    assert await _sent(outbox) == ["model.promoted"]
    await job.look_once()  # nothing more to decide: no second change, no second webhook
    assert len(store.changes(5)) == 2
    await outbox.close()


async def test_a_challenger_the_workers_refuse_is_rolled_back(
    challenged: tuple[Settings, str, str],
) -> None:
    settings, champion, _ = challenged
    outbox = open_outbox(settings)
    await _job(settings, outbox, refusal="graph signature differs").look_once()
    (rollout,) = SqliteRolloutStore(settings.rollout_dir / "rollout.db").rollouts(5)
    assert rollout.status == "rolled_back"
    assert "graph signature differs" in rollout.reason
    assert current_version(settings.model_root) == champion
    assert challenger_version(settings.model_root) is None
    assert await _sent(outbox) == ["model.rolled_back"]
    await outbox.close()


async def test_a_publish_outside_the_rollout_is_recorded(
    challenged: tuple[Settings, str, str],
) -> None:
    settings, champion, challenger = challenged
    (settings.model_root / "CHALLENGER").unlink()
    outbox = open_outbox(settings)
    job = _job(settings, outbox)
    await job.look_once()
    point_current(settings.model_root, challenger)
    await job.look_once()
    changes = SqliteRolloutStore(settings.rollout_dir / "rollout.db").changes(5)
    assert [(c.kind, c.from_version, c.to_version) for c in changes] == [
        ("publish", champion, challenger),
        ("publish", None, champion),
    ]
    await outbox.close()
