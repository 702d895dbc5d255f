"""Paths of the deployment files and the series names app/observability/metrics.py exports."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from app.observability import metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
SERIES_NAME = re.compile(r"\brecserve_[a-z0-9_]+")  # recording rules use recserve:...


def exported_series() -> set[str]:
    """Every series name recserve's metrics produce (counter _total, histogram _bucket...)."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            family = value.describe()[0]
            names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def unknown_series(expr: str) -> set[str]:
    return set(SERIES_NAME.findall(expr)) - exported_series()
