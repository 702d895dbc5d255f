"""Every Prometheus metric recserve exports, defined once.

Names follow ``recserve_<subsystem>_<name>_<unit>``. No label ever carries a user id.
With several uvicorn workers, ``recserve serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so each
worker writes its samples to a shared directory and ``/metrics`` aggregates them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

# Sub-millisecond resolution: the service's budget is a few milliseconds.
LATENCY_BUCKETS = (
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)

REQUEST_SECONDS = Histogram(
    "recserve_api_request_seconds",
    "Time to answer an API request, by endpoint and by how the answer was made.",
    ["endpoint", "source"],
    buckets=LATENCY_BUCKETS,
)
REQUESTS = Counter(
    "recserve_api_requests_total",
    "API requests by endpoint and HTTP status code.",
    ["endpoint", "status"],
)
CACHE_LOOKUPS = Counter(
    "recserve_cache_lookups_total",
    "Recommendation cache lookups by tier and result (hit or miss).",
    ["tier", "result"],
)
CACHE_ERRORS = Counter(
    "recserve_cache_errors_total",
    "Cache backend failures by tier and operation; the request carried on without that tier.",
    ["tier", "operation"],
)
FALLBACKS = Counter(
    "recserve_serving_fallbacks_total",
    "Requests answered by the popularity fallback, by reason.",
    ["reason"],
)
FEATURE_FETCH_SECONDS = Histogram(
    "recserve_features_fetch_seconds",
    "Time to read one user's online features from Feast.",
    buckets=LATENCY_BUCKETS,
)
INFERENCE_SECONDS = Histogram(
    "recserve_model_inference_seconds",
    "Time for one onnxruntime scoring call.",
    buckets=LATENCY_BUCKETS,
)
EVENTS = Counter(
    "recserve_events_total",
    "Events received by POST /events, by type and outcome (accepted, duplicate, rejected).",
    ["type", "outcome"],
)
EVENTS_PROFILE_UPDATE_SECONDS = Histogram(
    "recserve_events_profile_update_seconds",
    "Time to fold one batch's events into the online features (read + push).",
    buckets=LATENCY_BUCKETS,
)
EVENTS_PROFILE_UPDATE_FAILURES = Counter(
    "recserve_events_profile_update_failures_total",
    "Batches logged durably whose online feature update failed (the events stay in the log).",
)
MODEL_INFO = Gauge(
    "recserve_model_info",
    "The model version being served (value 1 on the current version).",
    ["version", "model_type"],
    multiprocess_mode="liveall",
)
DEPENDENCY_UP = Gauge(
    "recserve_dependency_up",
    "1 when a dependency answered its last readiness check, else 0.",
    ["dependency"],
    multiprocess_mode="liveall",
)


def _multiprocess() -> bool:
    # Decided by how prometheus_client stores values, fixed when it was first imported: Feast's
    # import sets PROMETHEUS_MULTIPROC_DIR for its own use, so the variable alone says nothing
    # about the metrics above.
    return values.ValueClass is not values.MutexValue and bool(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    )


def render_latest() -> tuple[bytes, str]:
    """The exposition text for ``/metrics``, aggregated across workers when multiprocess."""
    if _multiprocess():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(DEFAULT_REGISTRY), CONTENT_TYPE_LATEST
