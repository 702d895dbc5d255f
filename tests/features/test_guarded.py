"""The breaker in front of the online feature store, on a real Feast client (SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.features.client import FeastFeatureClient, FeatureStoreError
from app.features.guarded import BreakerFeatureClient
from app.features.store import sqlite_path
from app.infra.breaker import CircuitBreaker
from app.settings import Settings
from tests.integration.conftest import copy_home, users_with_history

pytestmark = pytest.mark.integration


def test_failing_store_is_skipped_until_the_trial_read(
    built_home: Settings, tmp_path: Path
) -> None:
    settings = copy_home(built_home, tmp_path / "home")
    now = [0.0]
    inner = FeastFeatureClient.from_settings(settings)
    client = BreakerFeatureClient(inner, CircuitBreaker(2.0, clock=lambda: now[0]))
    user = users_with_history(settings)[0]
    assert client.get_user(user) is not None
    database = sqlite_path(settings)
    saved = database.rename(tmp_path / "online.db.saved")

    with pytest.raises(FeatureStoreError, match="is missing"):
        client.get_user(user)  # reaches the store, fails, opens the circuit
    saved.rename(database)  # back, but only a read that reaches the store could tell
    with pytest.raises(FeatureStoreError, match="circuit open"):
        client.get_user(user)
    client.ping()  # readiness always asks the store itself

    now[0] = 2.5  # the retry delay has passed: one trial read goes through and closes it
    assert client.get_user(user) is not None
    assert client.get_user(user) is not None
    client.close()
