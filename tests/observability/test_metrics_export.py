"""``/metrics`` exports what recserve measures, nothing that only looks like a measurement."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.api.main import create_app
from app.observability.metrics import EXPORTED_PREFIXES
from app.settings import Settings


def test_metrics_leave_out_the_feast_feature_server_they_never_run(built_home: Settings) -> None:
    with TestClient(create_app(built_home)) as client:
        assert client.get("/recommend", params={"user_id": "u-anyone", "k": 3}).status_code == 200
        names = {f.name for f in text_string_to_metric_families(client.get("/metrics").text)}
    assert "recserve_api_requests" in names
    assert not any(name.startswith("feast_") for name in names), sorted(names)
    assert all(name.startswith(EXPORTED_PREFIXES) for name in names), sorted(names)
