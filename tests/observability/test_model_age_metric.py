"""The StaleFeatures alert reads when the served model was trained from /metrics."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.api.main import create_app
from app.artifacts import current_version, read_manifest
from app.settings import Settings
from tests.integration.conftest import metric


def test_metrics_export_when_the_served_model_was_trained(built_home: Settings) -> None:
    version = current_version(built_home.model_root)
    assert version is not None
    manifest = read_manifest(built_home.model_root / version)
    with TestClient(create_app(built_home)) as client:
        text = client.get("/metrics").text
    exported = metric(text, "recserve_model_trained_timestamp_seconds")
    assert exported == manifest.trained_at.timestamp()
