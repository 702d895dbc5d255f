"""A hung Redis costs experiment traffic no more than the breaker allows: the exposure store
sits behind the same circuit breaker as consent and feature reads. Real Redis of the test's
own (paused with SIGSTOP), the app in process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.settings import Settings
from tests.integration.conftest import PrivateRedis, users_with_history
from tests.integration.test_redis_outage import redis_home  # noqa: F401 (fixture)
from tests.privacy.helpers import EXPERIMENT, with_experiment_and_crm

pytestmark = pytest.mark.integration

REQUESTS = 30
SLOW_SECONDS = 0.04  # most of the 50 ms socket timeout
# Consent, feature reads, the shared cache tier and exposures each open their own breaker on
# their first timeout, not necessarily in the same request.
BREAKERS = 4


def test_a_hung_redis_delays_at_most_one_experiment_request_per_retry_period(
    redis_home: Settings,  # noqa: F811 (fixture)
    private_redis: PrivateRedis,
    tmp_path: Path,
) -> None:
    settings = with_experiment_and_crm(redis_home, tmp_path)
    users = users_with_history(settings)[:REQUESTS]
    with TestClient(create_app(settings)) as client:
        warm = client.get("/recommend", params={"user_id": users[0], "device": "web"}).json()
        assert warm["experiment_id"] == EXPERIMENT
        private_redis.pause()
        try:
            durations = []
            started = time.monotonic()
            for user_id in users:
                before = time.perf_counter()
                answer = client.get("/recommend", params={"user_id": user_id, "device": "web"})
                durations.append(time.perf_counter() - before)
                assert answer.status_code == 200, answer.text
                assert answer.json()["experiment_id"] == EXPERIMENT
            elapsed = time.monotonic() - started
        finally:
            private_redis.resume()
    periods = 1 + int(elapsed / settings.redis.retry_after_seconds)
    slow = [round(d * 1000) for d in durations if d > SLOW_SECONDS]
    # The first requests pay the timeouts that open the breakers; later ones at most one
    # trial of each per period.
    assert len(slow) <= BREAKERS * periods, (slow, elapsed)
    assert len(slow) < REQUESTS // 4, slow
