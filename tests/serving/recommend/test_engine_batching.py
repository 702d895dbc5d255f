"""Concurrent requests share their consent and feature reads, and answer as they would alone
(real model, SQLite Feast store and consent store)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

import pytest
from prometheus_client import REGISTRY

from app.bootstrap import build_consent, load_current_model
from app.features.client import FeastFeatureClient, FeatureStoreError
from app.features.schema import UserFeatures
from app.privacy.consent import Purpose
from app.privacy.service import ConsentService
from app.serving.recommend.engine import RecommendationEngine
from app.serving.types import FallbackReason, RecommendRequest, Source
from app.settings import Settings
from tests.integration.conftest import users_with_history

pytestmark = pytest.mark.integration


class BatchRecordingClient:
    """The real feature client, recording the users of each read; fails while ``failing``."""

    def __init__(self, inner: FeastFeatureClient) -> None:
        self.inner = inner
        self.batches: list[list[str]] = []
        self.failing = False

    def get_user(
        self, user_id: str, features: Collection[str] | None = None
    ) -> UserFeatures | None:
        return self.get_users([user_id], features)[user_id]

    def get_users(
        self, user_ids: Sequence[str], features: Collection[str] | None = None
    ) -> dict[str, UserFeatures | None]:
        self.batches.append(list(user_ids))
        if self.failing:
            raise FeatureStoreError("online read failed: store down")
        return self.inner.get_users(user_ids, features)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()


class ConsentReads:
    """Records the users of each consent read the engine makes through the real service."""

    def __init__(self, service: ConsentService) -> None:
        self.batches: list[list[str]] = []
        self._allows_many = service.allows_many

    async def __call__(self, user_ids: Sequence[str], purpose: Purpose) -> dict[str, bool]:
        self.batches.append(list(user_ids))
        return await self._allows_many(user_ids, purpose)


def _feature_reads() -> tuple[float, float]:
    count = REGISTRY.get_sample_value("recserve_serving_read_batch_users_count")
    users = REGISTRY.get_sample_value("recserve_serving_read_batch_users_sum")
    return count or 0.0, users or 0.0


async def test_concurrent_requests_share_reads_and_answer_as_alone(
    built_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    features = BatchRecordingClient(FeastFeatureClient.from_settings(built_home))
    consent = build_consent(built_home)
    consent_reads = ConsentReads(consent)
    monkeypatch.setattr(consent, "allows_many", consent_reads)
    model = load_current_model(built_home)
    users = [*users_with_history(built_home)[:5], "nobody-at-all"]
    try:
        one_by_one = RecommendationEngine(model, features, None, consent=consent)
        alone = [await one_by_one.recommend(RecommendRequest(user, 5)) for user in users]
        assert features.batches == [[user] for user in users]
        features.batches.clear()
        consent_reads.batches.clear()
        reads_before = _feature_reads()

        # A fresh engine: its shared reads wait for company (no quiet spell behind them).
        engine = RecommendationEngine(model, features, None, consent=consent)
        together = await asyncio.gather(*(engine.recommend(RecommendRequest(u, 5)) for u in users))
    finally:
        await consent.close()
        features.close()

    assert features.batches == [users]
    assert consent_reads.batches == [users]
    count, read_users = _feature_reads()
    assert (count - reads_before[0], read_users - reads_before[1]) == (1, len(users))
    assert [(a.items, a.source) for a in together] == [(a.items, a.source) for a in alone]
    assert together[-1].fallback_reason is FallbackReason.UNKNOWN_USER
    assert {a.source for a in together[:-1]} == {Source.PERSONALIZED}


async def test_a_failed_shared_read_falls_back_for_every_request_of_it(
    built_home: Settings,
) -> None:
    features = BatchRecordingClient(FeastFeatureClient.from_settings(built_home))
    engine = RecommendationEngine(load_current_model(built_home), features, None)
    users = users_with_history(built_home)[:3]
    features.failing = True
    try:
        failed = await asyncio.gather(*(engine.recommend(RecommendRequest(u, 5)) for u in users))
        features.failing = False
        recovered = await engine.recommend(RecommendRequest(users[0], 5))
    finally:
        features.close()
    assert features.batches == [users, users[:1]]
    assert {a.fallback_reason for a in failed} == {FallbackReason.FEATURE_STORE_ERROR}
    assert all(len(a.items) == 5 for a in failed)
    assert recovered.source is Source.PERSONALIZED
