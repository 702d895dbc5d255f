"""Consent through the real ASGI app on embedded defaults (SQLite consent store, event log and
online store, real ONNX model), on a copy of the built home."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.bootstrap import build_consent, load_current_model
from app.features.client import FeastFeatureClient
from app.features.schema import UserFeatures
from app.privacy.consent import Purpose
from app.serving.recommend.engine import RecommendationEngine
from app.serving.types import FallbackReason, RecommendRequest, Source
from app.settings import Settings
from tests.privacy.helpers import event, logged_events

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def users_with_history(home: Settings) -> list[str]:
    interactions = pd.read_parquet(home.data_dir / "interactions.parquet")
    return sorted(interactions["user_id"].unique().tolist())


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_consent_is_recorded_with_history_and_defaults(client: TestClient) -> None:
    fresh = client.get("/users/consent-u1/consent").json()
    assert fresh["personalization"] is True
    assert fresh["tracking"] is True
    assert fresh["defaulted"] == ["personalization", "tracking"]
    assert fresh["history"] == []
    assert fresh["updated_at"] is None

    first = client.put("/users/consent-u1/consent", json={"tracking": False})
    second = client.put("/users/consent-u1/consent", json={"personalization": False})

    assert first.status_code == second.status_code == 200
    assert first.json()["tracking"] is False
    assert first.json()["defaulted"] == ["personalization"]
    body = client.get("/users/consent-u1/consent").json()
    assert (body["personalization"], body["tracking"], body["defaulted"]) == (False, False, [])
    assert [h["changes"] for h in body["history"]] == [
        {"tracking": False},
        {"personalization": False},
    ]
    assert body["history"][0]["at"] <= body["history"][1]["at"] == body["updated_at"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "body"), ({"tracking": "maybe"}, "tracking"), ({"marketing": True}, "marketing")],
)
def test_bad_consent_body_is_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    response = client.put("/users/consent-u2/consent", json=body)
    assert response.status_code == 422
    assert field in str(response.json()["detail"])


def test_events_without_tracking_consent_are_answered_and_not_stored(
    client: TestClient, home: Settings, users_with_history: list[str]
) -> None:
    refusing, consenting = users_with_history[0], users_with_history[1]
    client.put(f"/users/{refusing}/consent", json={"tracking": False})
    before = _sample("recserve_events_total", type="purchase", outcome="not_consented")
    history_before = client.get(f"/users/{refusing}/profile").json()["behaviour"]
    kept, dropped = event(consenting, "sku-000001"), event(refusing, "sku-000002", "purchase")

    response = client.post("/events", json={"events": [kept, dropped]})

    body = response.json()
    assert response.status_code == 200
    assert body["accepted"] == [kept["event_id"]]
    assert body["not_consented"] == [dropped["event_id"]]
    assert (body["accepted_count"], body["not_consented_count"]) == (1, 1)
    stored = {e.event_id for e in logged_events(home)}
    assert kept["event_id"] in stored
    assert dropped["event_id"] not in stored
    after = _sample("recserve_events_total", type="purchase", outcome="not_consented")
    assert after == before + 1
    # Nor did the event reach the user's online profile.
    assert client.get(f"/users/{refusing}/profile").json()["behaviour"] == history_before


def test_recommend_without_personalization_consent_reads_no_profile(
    client: TestClient, users_with_history: list[str]
) -> None:
    user = users_with_history[2]
    params = {"user_id": user, "k": 5}
    assert client.get("/recommend", params=params).json()["source"] == "personalized"
    assert client.get("/recommend", params=params).json()["cache"] == "local"
    client.put(f"/users/{user}/consent", json={"personalization": False})
    reads_before = _sample("recserve_features_fetch_seconds_count")
    refusals_before = _sample("recserve_serving_fallbacks_total", reason="no_consent")

    answers = [
        client.get("/recommend", params=params).json(),
        client.post("/recommend", json={"user_id": user, "k": 5}).json(),
    ]

    for body in answers:
        assert (body["source"], body["fallback_reason"]) == ("popular", "no_consent")
        assert body["cache"] is None  # the personalised list cached before is not served
        assert len(body["items"]) == 5
    assert _sample("recserve_features_fetch_seconds_count") == reads_before
    assert _sample("recserve_serving_fallbacks_total", reason="no_consent") == refusals_before + 2

    client.put(f"/users/{user}/consent", json={"personalization": True})
    assert client.get("/recommend", params=params).json()["source"] == "personalized"


class CountingFeatureClient:
    """The real feature client, counting reads."""

    def __init__(self, inner: FeastFeatureClient) -> None:
        self.inner = inner
        self.reads: list[str] = []

    def get_user(
        self, user_id: str, features: Collection[str] | None = None
    ) -> UserFeatures | None:
        self.reads.append(user_id)
        return self.inner.get_user(user_id, features)

    def get_users(
        self, user_ids: Sequence[str], features: Collection[str] | None = None
    ) -> dict[str, UserFeatures | None]:
        self.reads.extend(user_ids)
        return self.inner.get_users(user_ids, features)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()


def test_engine_never_calls_the_feature_client_without_consent(
    home: Settings, users_with_history: list[str]
) -> None:
    refusing, consenting = users_with_history[3], users_with_history[4]

    async def run() -> tuple[list[object], list[str]]:
        consent = build_consent(home)
        features = CountingFeatureClient(FeastFeatureClient.from_settings(home))
        engine = RecommendationEngine(load_current_model(home), features, None, consent=consent)
        await consent.update(refusing, {Purpose.PERSONALIZATION: False})
        answers = [
            await engine.recommend(RecommendRequest(refusing, 5)),
            await engine.recommend(RecommendRequest(consenting, 5)),
        ]
        await consent.close()
        features.close()
        return [(a.source, a.fallback_reason) for a in answers], features.reads

    answers, reads = asyncio.run(run())

    assert answers == [(Source.POPULAR, FallbackReason.NO_CONSENT), (Source.PERSONALIZED, None)]
    assert reads == [consenting]
