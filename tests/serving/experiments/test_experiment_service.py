"""``ExperimentService``: exposures keyed by pseudonym (and erased by it), a failing exposure
store, and the store picked from settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from app.events.types import Event
from app.experiments.attribution import InMemoryExposureStore
from app.experiments.store import open_exposure_store
from app.experiments.store_redis import RedisExposureStore
from app.experiments.store_sqlite import SqliteExposureStore
from app.privacy.pseudonym import Pseudonymizer
from app.serving.experiments.service import ExperimentService
from app.settings import Settings
from tests.experiments.factories import experiment

pytestmark = pytest.mark.integration

PSEUDONYMS = Pseudonymizer(b"experiment-service-test-key")


def _errors(operation: str) -> float:
    value = REGISTRY.get_sample_value(
        "recserve_experiment_store_errors_total", {"operation": operation}
    )
    return value or 0.0


async def no_segment(user_id: str) -> str | None:
    return None


@pytest.fixture
def broken_service(tmp_path: Path) -> ExperimentService:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    return ExperimentService(
        [experiment("ab-1")],
        SqliteExposureStore(blocker / "exposures.db"),
        no_segment,
        timedelta(hours=1),
        PSEUDONYMS,
    )


async def test_exposures_hold_the_keyed_pseudonym_and_are_erased_by_user_id() -> None:
    store = InMemoryExposureStore()
    service = ExperimentService(
        [experiment("ab-1")], store, no_segment, timedelta(hours=1), PSEUDONYMS
    )
    for user_id in ("alice", "alice", "bob"):
        assignment = await service.assign(user_id, segment=None, device=None)
        await service.record(assignment, user_id, ["i1", "i2"])

    [first, second] = await service.exposures_of("alice")
    assert first.user_key == second.user_key == PSEUDONYMS.of("alice")
    assert first.user_key != Pseudonymizer(b"another-key-entirely").of("alice")

    assert await service.erase_user("alice") == 2
    assert await service.exposures_of("alice") == []
    assert [e.user_key for e in await service.exposures_of("bob")] == [PSEUDONYMS.of("bob")]
    counts = await service.report("ab-1")
    assert counts is not None
    assert sum(arm.exposures for arm in counts.variants) == 3  # totals stay


async def test_a_failing_store_loses_the_exposure_but_not_the_response(
    broken_service: ExperimentService,
) -> None:
    before = _errors("record")
    assignment = await broken_service.assign("alice", segment=None, device=None)
    assert assignment is not None  # traffic share 1: everyone is in

    tag = await broken_service.record(assignment, "alice", ["i1", "i2"])

    assert (tag.experiment_id, tag.variant) == ("ab-1", assignment.variant)
    assert tag.headers()["X-Experiment-ID"] == "ab-1"
    assert _errors("record") == before + 1


async def test_a_failing_store_skips_attribution_without_raising(
    broken_service: ExperimentService,
) -> None:
    before = _errors("attribute")
    click = Event("e1", "alice", "i1", "click", 1.8e9, context={"recommendation_id": "r1"})
    view = Event("e2", "alice", "i1", "view", 1.8e9, context={"recommendation_id": "r1"})

    await broken_service.attribute([click, view])

    assert _errors("attribute") == before + 1  # the view is not feedback: never looked up


def test_redis_store_when_redis_is_configured_else_sqlite_under_the_home(tmp_path: Path) -> None:
    embedded = open_exposure_store(Settings(home=tmp_path))
    shared = open_exposure_store(Settings(home=tmp_path, redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(embedded, SqliteExposureStore)
    assert embedded.path == tmp_path / "experiments" / "exposures.db"
    assert isinstance(shared, RedisExposureStore)
    assert shared.prefix == "recserve:exp"
