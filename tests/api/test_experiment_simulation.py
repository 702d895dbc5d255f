"""Simulated A/B and A/A experiments through the HTTP API, checked against the known truth.

Synthetic users get ``/recommend`` (their assignment, recommendation id and items come from the
API), see every item shown (one impression each) and click each with the true CTR of their
variant; all of it goes back through ``POST /events`` with the recommendation id. The report
must find the planted lift (and no lift in the A/A), with the Prometheus counters agreeing.

Seeds are fixed so the tests are deterministic; the API's counts equal an offline replay of the
same draws exactly. With any other seed the interval checks hold with probability 1 - alpha
(the coverage ``tests/experiments`` verifies), and the A/B's power is above 95 %.

The false-positive rate over many seeded A/A runs is checked at the statistics level in
``tests/experiments/test_report.py::test_a_a_false_positive_rate_is_near_alpha`` (thousands of
runs are too slow through HTTP).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from tests.api.experiment_support import (
    experiment_client,
    feedback,
    post_events,
    two_arm_experiment,
)
from tests.integration.conftest import metric

pytestmark = pytest.mark.integration

USERS_PER_EXPERIMENT = 800
K = 10
CONTROL_CTR = 0.10


@pytest.fixture(scope="module")
def client(built_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    config = two_arm_experiment("sim-ab", "sim-ab") + two_arm_experiment("sim-aa", "sim-aa")
    with experiment_client(built_home, tmp_path_factory.mktemp("simulation"), config) as client:
        yield client


def _simulate(
    client: TestClient, experiment_id: str, true_ctr: dict[str, float], seed: int
) -> dict[str, Any]:
    """Run the users through the API and return the experiment's report."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(USERS_PER_EXPERIMENT):
        user_id = f"{experiment_id}-user-{n}"
        response = client.get(
            "/recommend", params={"user_id": user_id, "k": K, "device": experiment_id}
        )
        body = response.json()
        assert body["experiment_id"] == experiment_id
        assert response.headers["x-variant"] == body["variant"]
        for item in body["items"]:
            events.append(
                feedback("impression", user_id, item["item_id"], body["recommendation_id"])
            )
            if rng.random() < true_ctr[body["variant"]]:
                events.append(
                    feedback("click", user_id, item["item_id"], body["recommendation_id"])
                )
    post_events(client, events)
    response = client.get(f"/experiments/{experiment_id}/report")
    assert response.status_code == 200
    return response.json()


def _variants(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variant["name"]: variant for variant in report["variants"]}


def test_ab_report_finds_the_planted_ctr_lift(client: TestClient) -> None:
    treatment_ctr = 0.13
    before = client.get("/metrics").text
    report = _simulate(client, "sim-ab", {"control": CONTROL_CTR, "treatment": treatment_ctr}, 0)
    after = client.get("/metrics").text

    variants = _variants(report)
    control, treatment = variants["control"], variants["treatment"]
    assert control["exposures"] + treatment["exposures"] == USERS_PER_EXPERIMENT
    assert control["users"] == control["exposures"]  # one request per user
    assert control["impressions"] == K * control["exposures"]
    assert not report["sample_ratio"]["mismatch"]

    comparison = treatment["ctr"]["vs_control"]
    true_difference = treatment_ctr - CONTROL_CTR
    true_lift = treatment_ctr / CONTROL_CTR - 1
    assert comparison["p_value"] < report["alpha"]
    assert comparison["significant"]
    assert comparison["absolute_ci_low"] <= true_difference <= comparison["absolute_ci_high"]
    assert comparison["relative_ci_low"] <= true_lift <= comparison["relative_ci_high"]
    assert abs(comparison["absolute_difference"] - true_difference) < 0.015
    assert abs(control["ctr"]["value"] - CONTROL_CTR) < 0.015
    assert report["ctr_sample_size"]["required_impressions_per_variant"] > 0

    # The Prometheus counters saw exactly what the report counts.
    for name in ("control", "treatment"):
        labels = {"experiment": "sim-ab", "variant": name}
        for counter in ("exposures", "impressions", "clicks"):
            delta = metric(after, f"recserve_experiment_{counter}_total", **labels) - metric(
                before, f"recserve_experiment_{counter}_total", **labels
            )
            assert delta == variants[name][counter], (name, counter)


def test_aa_report_finds_no_lift(client: TestClient) -> None:
    report = _simulate(client, "sim-aa", {"control": CONTROL_CTR, "treatment": CONTROL_CTR}, 11)

    variants = _variants(report)
    comparison = variants["treatment"]["ctr"]["vs_control"]
    assert comparison["p_value"] >= report["alpha"]
    assert not comparison["significant"]
    assert comparison["absolute_ci_low"] <= 0 <= comparison["absolute_ci_high"]
    assert comparison["relative_ci_low"] <= 0 <= comparison["relative_ci_high"]
    assert not report["sample_ratio"]["mismatch"]
    assert sum(v["exposures"] for v in variants.values()) == USERS_PER_EXPERIMENT
