"""Redis (Feast online store and shared cache tier) dies, or hangs, under a running server.

What must hold: answers stay 200 and fast while Redis is down, /readyz and
/metrics say what is wrong, and personalised answers return without restarting the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from app.settings import Settings
from tests.integration.conftest import PrivateRedis, metric, serve, users_with_history
from tests.integration.tcp_proxy import delay_proxy

pytestmark = pytest.mark.integration

# Generous against the 50 ms Redis timeouts, tight against a hang or a retry with backoff.
DEGRADED_ANSWER_SECONDS = 1.0
# The breaker's retry_after (2 s by default) plus slack for a slow CI machine.
RECOVERY_SECONDS = 8.0


@pytest.fixture
def redis_home(private_redis: PrivateRedis, tmp_path: Path) -> Settings:
    """A small shop built with the private Redis as Feast's online store."""
    from app.data.synthetic import generate_shop
    from app.training.pipeline import build

    source = generate_shop(tmp_path / "source", n_users=200, n_items=80, n_events=4000, seed=5)
    settings = Settings(home=tmp_path / "home", redis_url=private_redis.url)
    build(settings, source, tuning_budget_seconds=5)
    return settings


def _recommend(http: httpx.Client, user_id: str) -> dict[str, object]:
    response = http.get("/recommend", params={"user_id": user_id, "k": 5})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _assert_fast_fallback(http: httpx.Client, user_id: str) -> None:
    started = time.perf_counter()
    answer = _recommend(http, user_id)
    assert time.perf_counter() - started < DEGRADED_ANSWER_SECONDS
    assert answer["source"] == "popular"
    # Consent lives in the same Redis and is checked first: unknown consent is withheld consent.
    assert answer["fallback_reason"] == "consent_unavailable"
    assert len(answer["items"]) == 5  # type: ignore[arg-type]


def _wait_for(condition: Callable[[], bool], seconds: float) -> float:
    """Poll ``condition`` until true; the seconds it took. Fails the test after ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not recovered after {seconds}s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_redis_killed_and_restarted_under_a_running_server(
    redis_home: Settings, private_redis: PrivateRedis
) -> None:
    users = users_with_history(redis_home)
    with (
        redis.Redis.from_url(private_redis.url) as shared,
        serve(redis_home.home, redis_url=private_redis.url) as http,
    ):
        first = _recommend(http, users[0])
        assert (first["source"], first["cache"]) == ("personalized", None)
        assert _recommend(http, users[0])["cache"] == "local"
        assert shared.exists(f"recserve:rec:{users[0]}")  # the shared tier was written too

        private_redis.kill()

        for user in users[1:6]:
            _assert_fast_fallback(http, user)
        readiness = http.get("/readyz")
        assert readiness.status_code == 200  # still serving: degraded, not unready
        ready = readiness.json()
        assert ready["degraded"] is True
        assert ready["dependencies"]["model"]["ok"] is True
        assert ready["dependencies"]["feature_store"]["ok"] is False
        assert ready["dependencies"]["cache_redis"]["ok"] is False
        assert "ConnectionError" in ready["dependencies"]["feature_store"]["detail"]
        text = http.get("/metrics").text
        assert metric(text, "recserve_serving_fallbacks_total", reason="consent_unavailable") >= 5
        assert metric(text, "recserve_dependency_up", dependency="feature_store") == 0
        assert metric(text, "recserve_dependency_up", dependency="cache_redis") == 0
        # Requests stop at the consent check, before the cache; the subscribers notice.
        assert metric(text, "recserve_cache_errors_total", operation="subscribe") >= 1

        private_redis.start()  # same port and directory: the append-only file restores the data

        # A user never asked for before: personalised means Feast reads Redis again.
        _wait_for(lambda: _recommend(http, users[6])["source"] == "personalized", RECOVERY_SECONDS)
        _wait_for(lambda: http.get("/readyz").json()["degraded"] is False, RECOVERY_SECONDS)
        assert _recommend(http, users[7])["source"] == "personalized"
        # The shared cache tier is written again once its breaker lets a call through.
        _wait_for(lambda: bool(shared.exists(f"recserve:rec:{users[7]}")), RECOVERY_SECONDS)
        text = http.get("/metrics").text
        assert metric(text, "recserve_dependency_up", dependency="feature_store") == 1
        assert metric(text, "recserve_dependency_up", dependency="cache_redis") == 1

        # Hung rather than dead: each read waits out the 50 ms socket timeout, no longer.
        private_redis.pause()
        for user in users[8:11]:
            _assert_fast_fallback(http, user)
        assert http.get("/readyz").json()["dependencies"]["feature_store"]["ok"] is False
        private_redis.resume()
        _wait_for(lambda: _recommend(http, users[11])["source"] == "personalized", RECOVERY_SECONDS)


def test_slow_redis_costs_at_most_the_timeouts(
    redis_home: Settings, private_redis: PrivateRedis
) -> None:
    """Redis answers, but every reply takes 300 ms (over the 50 ms socket timeouts): after one
    timeout the breakers in front of the Redis reads skip them, so answers stay fast (popular),
    and they are personalised again once Redis is quick."""
    users = users_with_history(redis_home)[:32]
    with (
        delay_proxy(private_redis.port) as proxy,
        serve(redis_home.home, redis_url=f"redis://127.0.0.1:{proxy.port}/0") as http,
    ):
        for user in users:  # the worker now holds their consent: k=4 below must read features
            assert _recommend(http, user)["source"] == "personalized"

        proxy.delay_seconds = 0.3
        started = time.perf_counter()
        answers = [http.get("/recommend", params={"user_id": u, "k": 4}) for u in users]
        # Without breakers every answer would wait out at least one 50 ms socket timeout.
        assert time.perf_counter() - started < len(users) * 0.05
        assert {a.status_code for a in answers} == {200}
        reasons = {a.json()["fallback_reason"] for a in answers}
        assert {a.json()["source"] for a in answers} == {"popular"}
        assert reasons <= {"feature_store_error", "consent_unavailable"}  # both reads guarded
        ready = http.get("/readyz").json()
        assert ready["degraded"] is True
        assert ready["dependencies"]["feature_store"]["ok"] is False
        text = http.get("/metrics").text
        fallbacks = sum(
            metric(text, "recserve_serving_fallbacks_total", reason=reason) for reason in reasons
        )
        assert fallbacks >= len(users)

        proxy.delay_seconds = 0
        _wait_for(
            lambda: (
                http.get("/recommend", params={"user_id": users[1], "k": 3}).json()["source"]
                == "personalized"
            ),
            RECOVERY_SECONDS,
        )
        _wait_for(lambda: http.get("/readyz").json()["degraded"] is False, RECOVERY_SECONDS)


def test_materialize_outlasts_the_request_path_timeouts(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """Every Redis reply takes 200 ms, four times the request path's 50 ms bound: the batch
    write into the online store still completes, bounded by the batch timeout instead."""
    from app.features.client import FeastFeatureClient
    from tests.features.test_client import U1, materialized_home

    with delay_proxy(private_redis.port) as proxy:
        proxy.delay_seconds = 0.2
        materialized_home(tmp_path / "home", redis_url=f"redis://127.0.0.1:{proxy.port}/0")

    features = FeastFeatureClient.from_settings(
        Settings(home=tmp_path / "home", redis_url=private_redis.url)
    )
    try:
        assert features.get_user("u1") == U1
    finally:
        features.close()
