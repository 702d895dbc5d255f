"""Experiments through the real ASGI app: assignment on ``/recommend`` (GET and POST), the
variant's strategy, attribution of ``/events`` feedback and the ``/experiments`` routes."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.api.main import create_app
from app.experiments.assignment import assign
from app.experiments.config import Experiment, ExperimentConfigError, parse_experiments
from app.settings import Settings
from tests.api.experiment_support import experiment_client, feedback, post_events
from tests.integration.conftest import users_with_history

pytestmark = pytest.mark.integration

CONFIG = """
[[experiments]]
id = "home-ranker"
traffic_share = 0.5
control = "control"
min_detectable_effect = 0.1
targeting = { devices = ["web"] }
[[experiments.variants]]
name = "control"
weight = 1
strategy = { kind = "model" }
[[experiments.variants]]
name = "popular"
weight = 1
strategy = { kind = "popular" }

[[experiments]]
id = "mobile-diversity"
traffic_share = 1.0
control = "control"
min_detectable_effect = 0.1
targeting = { devices = ["ios"] }
[[experiments.variants]]
name = "control"
weight = 1
strategy = { kind = "model" }
[[experiments.variants]]
name = "diverse"
weight = 1
strategy = { kind = "diversified", lambda = 0.3 }
"""


@pytest.fixture(scope="module")
def experiments() -> tuple[Experiment, ...]:
    return parse_experiments(tomllib.loads(CONFIG))


@pytest.fixture(scope="module")
def client(built_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with experiment_client(built_home, tmp_path_factory.mktemp("exp-api"), CONFIG) as client:
        yield client


@pytest.fixture(scope="module")
def users(built_home: Settings) -> list[str]:
    return users_with_history(built_home)


def test_assignment_matches_the_hash_and_is_in_body_and_headers(
    client: TestClient, experiments: tuple[Experiment, ...], users: list[str]
) -> None:
    now = datetime.now(UTC)
    seen = set()
    for user_id in users[:60]:
        response = client.get("/recommend", params={"user_id": user_id, "device": "web"})
        body = response.json()
        expected = assign(experiments, user_id, segment=None, device="web", now=now)
        assert body["recommendation_id"] == response.headers["x-recommendation-id"]
        assert body["request_id"] == response.headers["x-request-id"]
        if expected is None:  # outside the 50 % traffic share: the default, no experiment
            assert body["experiment_id"] is None
            assert body["variant"] is None
            assert "x-experiment-id" not in response.headers
            assert "x-variant" not in response.headers
        else:
            assert (body["experiment_id"], body["variant"]) == ("home-ranker", expected.variant)
            assert response.headers["x-experiment-id"] == "home-ranker"
            assert response.headers["x-variant"] == expected.variant
        seen.add(body["variant"])
    assert seen == {None, "control", "popular"}


def test_assignment_is_sticky_across_get_and_post_and_targets_the_device(
    client: TestClient, users: list[str]
) -> None:
    user_id = users[0]
    first = client.get("/recommend", params={"user_id": user_id, "device": "ios"}).json()
    again = client.get("/recommend", params={"user_id": user_id, "device": "ios"}).json()
    posted = client.post(
        "/recommend", json={"user_id": user_id, "context": {"device": "ios", "page": "home"}}
    ).json()
    untargeted = client.get("/recommend", params={"user_id": user_id, "device": "tv"}).json()

    assert first["experiment_id"] == "mobile-diversity"
    assert first["variant"] == again["variant"] == posted["variant"]
    assert len({first["recommendation_id"], again["recommendation_id"]}) == 2
    assert untargeted["experiment_id"] is None


def test_variants_serve_their_strategy(client: TestClient, users: list[str]) -> None:
    by_variant: dict[str, dict[str, object]] = {}
    for user_id in users:
        body = client.get("/recommend", params={"user_id": user_id, "device": "web"}).json()
        if body["variant"] is not None:
            by_variant.setdefault(body["variant"], body)
        if len(by_variant) == 2:
            break
    assert by_variant["popular"]["source"] == "popular"
    assert by_variant["popular"]["fallback_reason"] is None  # a strategy, not a failure
    assert by_variant["control"]["source"] == "personalized"


def test_feedback_is_attributed_once_to_the_variant_and_reported(
    client: TestClient, users: list[str]
) -> None:
    user_id = users[5]
    body = client.get("/recommend", params={"user_id": user_id, "device": "ios", "k": 5}).json()
    rec, variant = body["recommendation_id"], body["variant"]
    shown = [item["item_id"] for item in body["items"]]
    before = _counts(client, "mobile-diversity")[variant]

    click = feedback("click", user_id, shown[1], rec)
    post_events(
        client,
        [
            *(feedback("impression", user_id, item, rec) for item in shown),
            click,
            feedback("click", user_id, shown[1], rec),  # the same click again, new event id
            feedback("purchase", user_id, shown[1], rec),
            feedback("add_to_cart", user_id, shown[1], rec),  # same pair: one conversion
            feedback("click", user_id, "not-shown", rec),
            feedback("click", user_id, shown[0], "unknown-recommendation"),
        ],
    )
    retried = client.post("/events", json={"events": [click]}).json()
    after = _counts(client, "mobile-diversity")[variant]

    assert retried["duplicates"] == [click["event_id"]]
    assert after["exposures"] == before["exposures"]
    assert after["impressions"] - before["impressions"] == len(shown)
    assert after["clicks"] - before["clicks"] == 1
    assert after["conversions"] - before["conversions"] == 1


def test_feedback_in_whole_unix_seconds_is_attributed_and_misses_are_reported(
    client: TestClient, users: list[str]
) -> None:
    user_id = users[6]
    body = client.get("/recommend", params={"user_id": user_id, "device": "ios", "k": 5}).json()
    rec, variant = body["recommendation_id"], body["variant"]
    shown = [item["item_id"] for item in body["items"]]
    before = _counts(client, "mobile-diversity")[variant]
    whole_second = int(time.time())  # what the docs' examples send: same second as served
    misses_before = _unattributed_metric(client)

    impressions = [feedback("impression", user_id, item, rec) for item in shown]
    early = feedback("click", user_id, shown[0], rec)
    early["timestamp"] = whole_second - 3600  # far before the recommendation
    for event in impressions:
        event["timestamp"] = whole_second
    post_events(client, [*impressions, early, feedback("click", user_id, "not-shown", rec)])
    after = _counts(client, "mobile-diversity")[variant]

    assert after["impressions"] - before["impressions"] == len(shown)
    assert after["clicks"] == before["clicks"]
    for reason in ("before_exposure", "item_not_shown"):
        assert after["unattributed"].get(reason, 0) - before["unattributed"].get(reason, 0) == 1
        assert _unattributed_metric(client)[reason] - misses_before.get(reason, 0) == 1


def test_a_non_string_recommendation_id_is_rejected_naming_the_field(
    client: TestClient, users: list[str]
) -> None:
    answer = client.post(
        "/events", json={"events": [feedback("click", users[0], "i1", ["not", "a", "string"])]}
    ).json()
    assert answer["rejected"][0]["reason"] == "context: recommendation_id must be a string"


def test_experiments_are_listed_and_unknown_reports_are_404(client: TestClient) -> None:
    listed = client.get("/experiments").json()["experiments"]
    assert [e["id"] for e in listed] == ["home-ranker", "mobile-diversity"]
    assert listed[0]["running"]
    assert listed[0]["devices"] == ["web"]
    assert listed[1]["variants"][1]["strategy"] == {"kind": "diversified", "lambda": 0.3}

    response = client.get("/experiments/nope/report")
    assert response.status_code == 404
    assert "nope" in response.json()["message"]


def test_an_invalid_experiments_file_stops_the_app_starting(
    built_home: Settings, tmp_path: Path
) -> None:
    config = tmp_path / "experiments.toml"
    config.write_text(CONFIG.replace('control = "control"', 'control = "missing"', 1))
    settings = built_home.model_copy(update={"experiments_file": config})
    with (
        pytest.raises(ExperimentConfigError, match=r"experiments\[home-ranker\]\.control"),
        TestClient(create_app(settings)),
    ):
        pass


def _unattributed_metric(client: TestClient) -> dict[str, float]:
    """``recserve_experiment_unattributed_events_total`` by reason, from ``/metrics``."""
    families = text_string_to_metric_families(client.get("/metrics").text)
    return {
        sample.labels["reason"]: sample.value
        for family in families
        if family.name == "recserve_experiment_unattributed_events"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def _counts(client: TestClient, experiment_id: str) -> dict[str, Any]:
    report = client.get(f"/experiments/{experiment_id}/report").json()
    return {v["name"]: v for v in report["variants"]}
