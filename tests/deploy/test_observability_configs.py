"""The Prometheus config and alert rules pass promtool (syntax and unit tests), and the alert
rules and the Grafana dashboard query only series recserve exports, on the provisioned
datasource."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from tests.deploy.conftest import DEPLOY, exported_series, unknown_series

PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: apt-get install prometheus (.ci/run does)"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )


@needs_promtool
@pytest.mark.parametrize(
    "args",
    [
        ("check", "rules", "alerts.yml"),
        ("check", "config", "prometheus.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=["check-rules", "check-config", "test-rules"],
)
def test_promtool_accepts(args: tuple[str, ...]) -> None:
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_use_only_exported_series_and_name_a_runbook_section() -> None:
    operations = (DEPLOY.parent / "docs" / "operations.md").read_text().lower()
    for rule in rules():
        assert not unknown_series(rule["expr"]), rule.get("alert") or rule["record"]
        if "alert" in rule:
            anchor = rule["annotations"]["runbook"].split("#")[1]
            assert f"### {anchor}" in operations.replace("`", ""), anchor


def test_the_runbook_alerts_exist() -> None:
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert {
        "RecommendLatencyBudgetFastBurn",
        "HighErrorRate",
        "FallbackSpike",
        "CacheHitRatioCollapse",
        "StaleFeatures",
        "EventLogLagHigh",
        "ModelInputDrift",
        "ModelScoreDrift",
        "FallbackShareDrift",
        "DriftJobStalled",
        "OnlineCtrDrop",
    } <= alerts


def dashboard() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "recserve.json").read_text())
    return result


def test_dashboard_is_a_well_formed_grafana_dashboard() -> None:
    board = dashboard()
    assert {"uid", "title", "panels", "schemaVersion"} <= board.keys()
    panels = board["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (grid["y"] + dy, grid["x"] + dx) for dy in range(grid["h"]) for dx in range(grid["w"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] != "row":
            ref_ids = [target["refId"] for target in panel["targets"]]
            assert ref_ids, panel["title"]
            assert len(set(ref_ids)) == len(ref_ids), panel["title"]


def test_dashboard_round_trips_through_grafanas_schema_models() -> None:
    """Grafana's models (generated from its dashboard and panel schemas) decode the JSON and
    encode it back; a key the schema does not know, at any depth, is dropped on the way."""
    register_default_plugins()
    board = dashboard()
    encoded = json.dumps(Dashboard.from_json(board).to_json(), default=lambda o: o.to_json())
    assert lost_on_the_way(board, json.loads(encoded)) == []


def lost_on_the_way(original: Any, encoded: Any, path: str = "") -> list[str]:
    """Paths of ``original`` missing or different in ``encoded`` (which may add defaults)."""
    if isinstance(original, dict) and isinstance(encoded, dict):
        return [
            lost
            for key, value in original.items()
            for lost in (
                lost_on_the_way(value, encoded[key], f"{path}/{key}")
                if key in encoded
                else [f"{path}/{key}"]
            )
        ]
    if isinstance(original, list) and isinstance(encoded, list) and len(original) == len(encoded):
        return [
            lost
            for index, (item, back) in enumerate(zip(original, encoded, strict=True))
            for lost in lost_on_the_way(item, back, f"{path}[{index}]")
        ]
    return [] if original == encoded else [path]


def test_dashboard_queries_exported_series_on_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = provisioned["datasources"][0]["uid"]
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == uid
            assert not unknown_series(target["expr"]), (panel["title"], target["expr"])
    text = json.dumps(dashboard())
    # What an operator needs the dashboard to show.
    for series in (
        "recserve_api_request_seconds_bucket",
        "recserve_cache_lookups_total",
        "recserve_serving_fallbacks_total",
        "recserve_events_total",
        "recserve_event_log_lag_events",
        "recserve_model_info",
        "recserve_experiment_clicks_total",
        "recserve_quality_clicks_total",
        "recserve_quality_conversions_total",
        "recserve_quality_impressions_total",
        "recserve_drift_psi",
        "recserve_drift_unknown_share",
        "recserve_rollout_rate",
        "recserve_rollout_decisions_total",
        "recserve_feedback_total",
    ):
        assert series in text, series
        assert series in exported_series(), series
