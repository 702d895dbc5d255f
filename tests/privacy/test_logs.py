"""No user id in application logs, even on the error paths that log the most: every request
below runs against a corrupt online store, so each one logs a failure."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.features.store import sqlite_path
from app.settings import Settings
from tests.privacy.helpers import event

pytestmark = pytest.mark.integration

SECRET_USER = "u-jane.doe@example.com"


def test_failures_are_logged_without_user_ids(
    built_home: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = Settings(home=tmp_path / "home")
    shutil.copytree(built_home.home, home.home)
    # Without its tables every online read raises inside Feast.
    with closing(sqlite3.connect(sqlite_path(home))) as connection, connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        for (table,) in tables.fetchall():
            connection.execute(f'DROP TABLE "{table}"')

    with caplog.at_level(logging.DEBUG), TestClient(create_app(home)) as client:
        answer = client.get("/recommend", params={"user_id": SECRET_USER}).json()
        posted = client.post("/events", json={"events": [event(SECRET_USER, "sku-000001")]})
        client.put(f"/users/{SECRET_USER}/consent", json={"tracking": True})
        exported = client.get(f"/users/{SECRET_USER}/export")
        erased = client.delete(f"/users/{SECRET_USER}")

    assert answer["fallback_reason"] == "feature_store_error"
    assert posted.json()["accepted_count"] == 1
    assert (exported.status_code, erased.status_code) == (503, 200)  # nothing left to delete
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("feature store failed" in r.getMessage() for r in failures)
    assert any("profile update" in r.getMessage() for r in failures)
    # The test's own HTTP client logs URLs; every logger of the service must not.
    service_log = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not r.name.startswith("httpx")
    )
    assert "jane.doe" not in service_log
