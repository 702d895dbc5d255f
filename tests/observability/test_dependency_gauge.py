"""``recserve_dependency_up`` is kept current by each worker's background probe: Prometheus
scrapes ``/metrics`` only, and nobody need call ``/readyz`` for the DependencyDown alert to see."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.artifacts import CURRENT_POINTER
from app.settings import Settings
from tests.integration.conftest import copy_home, metric, serve

pytestmark = pytest.mark.integration


def test_a_fresh_server_exports_dependency_state_without_readyz(
    built_home: Settings, tmp_path: Path
) -> None:
    home = copy_home(built_home, tmp_path / "home")
    probe = {"RECSERVE_DEPENDENCY_PROBE_SECONDS": "0.2", "RECSERVE_MODEL_POLL_SECONDS": "0.2"}
    with serve(home.home, extra_env=probe) as http:
        text = http.get("/metrics").text
        # The writes too: a store that reads but refuses writes must reach the alert as well.
        dependencies = ("model", "feature_store", "event_log", "published_model")
        for dependency in (*dependencies, "event_log_writes", "profile_updates"):
            assert metric(text, "recserve_dependency_up", dependency=dependency) == 1, dependency

        # A published version the workers refuse: the gauge drops with no /readyz call.
        (home.model_root / CURRENT_POINTER).write_text("no-such-version\n")
        deadline = time.monotonic() + 15
        while metric(
            http.get("/metrics").text, "recserve_dependency_up", dependency="published_model"
        ):
            assert time.monotonic() < deadline, "the probe never saw the refused version"
            time.sleep(0.1)
