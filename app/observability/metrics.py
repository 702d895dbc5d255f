"""Every Prometheus metric recserve exports, defined once.

Names follow ``recserve_<subsystem>_<name>_<unit>``. No label ever carries a user id.
With several uvicorn workers, ``recserve serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so each
worker writes its samples to a shared directory and ``/metrics`` aggregates them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from typing import TypeVar

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
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

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
AVAILABILITY_REFRESH_ERRORS = Counter(
    "recserve_availability_refresh_errors_total",
    "Failed polls of the item availability store; the last known overrides stayed in force.",
)
FALLBACKS = Counter(
    "recserve_serving_fallbacks_total",
    "Requests answered by the popularity fallback, by reason.",
    ["reason"],
)
FEATURE_FETCH_SECONDS = Histogram(
    "recserve_features_fetch_seconds",
    "Time of one online feature read from Feast; concurrent /recommend requests share one "
    "read (their users' count: recserve_serving_read_batch_users).",
    buckets=LATENCY_BUCKETS,
)
READ_BATCH_USERS = Histogram(
    "recserve_serving_read_batch_users",
    "Distinct users per online feature read of the request path: requests ready in the same "
    "event-loop pass share one read (and one consent read before it).",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
INFERENCE_SECONDS = Histogram(
    "recserve_model_inference_seconds",
    "Time for one onnxruntime scoring call.",
    buckets=LATENCY_BUCKETS,
)
EVENTS = Counter(
    "recserve_events_total",
    "Events received by POST /events, by type and outcome (accepted, duplicate, rejected, "
    "not_consented: the user withheld tracking consent, nothing stored).",
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
EVENTS_PROFILE_UPDATE_RETRIES = Counter(
    "recserve_events_profile_update_retries_total",
    "Profile updates tried again because another writer held the online store's lock.",
)
FEEDBACK = Counter(
    "recserve_feedback_total",
    "Feedback stored by POST /feedback, by kind (not_interested, rating) and target (item, "
    "category, list).",
    ["kind", "target"],
)
FEEDBACK_READ_ERRORS = Counter(
    "recserve_feedback_read_errors_total",
    "Reads of a user's 'not interested' entries that failed: the answer left nothing out.",
)
# Experiment counters: labels come from the experiments file, so they stay bounded. Impressions,
# clicks and conversions count each (recommendation, item) pair once, as the report does.
# CTR per variant in PromQL:
#   sum by (experiment, variant) (rate(recserve_experiment_clicks_total[1h]))
#   / sum by (experiment, variant) (rate(recserve_experiment_impressions_total[1h]))
# and the conversion rate the same with recserve_experiment_conversions_total on top.
EXPERIMENT_EXPOSURES = Counter(
    "recserve_experiment_exposures_total",
    "Recommendation responses served inside an experiment, by experiment and variant.",
    ["experiment", "variant"],
)
EXPERIMENT_IMPRESSIONS = Counter(
    "recserve_experiment_impressions_total",
    "Attributed impressions (distinct recommendation and item), by experiment and variant.",
    ["experiment", "variant"],
)
EXPERIMENT_CLICKS = Counter(
    "recserve_experiment_clicks_total",
    "Attributed clicks (distinct recommendation and item), by experiment and variant.",
    ["experiment", "variant"],
)
EXPERIMENT_CONVERSIONS = Counter(
    "recserve_experiment_conversions_total",
    "Attributed add-to-cart or purchase (distinct recommendation and item), by experiment "
    "and variant.",
    ["experiment", "variant"],
)
EXPERIMENT_UNATTRIBUTED = Counter(
    "recserve_experiment_unattributed_events_total",
    "Feedback events carrying a recommendation_id that were not attributed, by reason: "
    "before_exposure, after_window, item_not_shown, unknown_recommendation (served outside any "
    "experiment, or expired), store_unavailable.",
    ["reason"],
)
EXPERIMENT_STORE_ERRORS = Counter(
    "recserve_experiment_store_errors_total",
    "Exposure store failures by operation; the request or event batch went on without it.",
    ["operation"],
)
# Online quality of every answer (not only experiments'), by the model version that made it, its
# source (personalized, cold_start, popular), the user's segment and the device class: all bounded
# (versions are published models, devices map to a fixed list). CTR by model version in PromQL:
#   sum by (model_version) (rate(recserve_quality_clicks_total[1h]))
#   / sum by (model_version) (rate(recserve_quality_impressions_total[1h]))
QUALITY_LABELS = ["model_version", "source", "segment", "device"]
QUALITY_EXPOSURES = Counter(
    "recserve_quality_exposures_total",
    "Recommendation responses recorded for attribution, by model version, source, segment "
    "and device.",
    QUALITY_LABELS,
)
QUALITY_IMPRESSIONS = Counter(
    "recserve_quality_impressions_total",
    "Attributed impressions (distinct recommendation and item) of any answer.",
    QUALITY_LABELS,
)
QUALITY_CLICKS = Counter(
    "recserve_quality_clicks_total",
    "Attributed clicks (distinct recommendation and item) of any answer.",
    QUALITY_LABELS,
)
QUALITY_CONVERSIONS = Counter(
    "recserve_quality_conversions_total",
    "Attributed add-to-cart or purchase (distinct recommendation and item) of any answer.",
    QUALITY_LABELS,
)
QUALITY_DROPPED = Counter(
    "recserve_quality_dropped_total",
    "Answers or feedback events left out of the online quality counts, by reason: queue_full "
    "(the exposure writer fell behind), store_unavailable.",
    ["reason"],
)
# Drift of live traffic from the training snapshot (app/monitoring/drift.py), computed by a
# background job in each worker; the event features are the same in every worker, the answer
# features each worker's own sample, so dashboards and alerts take the max.
DRIFT_PSI = Gauge(
    "recserve_drift_psi",
    "Population stability index of a feature, live window against the training snapshot "
    "(NaN while the window holds too few observations).",
    ["feature"],
    multiprocess_mode="livemax",
)
DRIFT_UNKNOWN_SHARE = Gauge(
    "recserve_drift_unknown_share",
    "Live share of the `unknown` bin of a two-bin feature: unknown_items (events), "
    "unknown_users and fallback (sampled answers).",
    ["feature"],
    multiprocess_mode="livemax",
)
DRIFT_RUNS = Counter(
    "recserve_drift_runs_total",
    "Drift job runs by outcome: computed, no_reference (the served model has no drift "
    "reference) or failed (the event log could not be read).",
    ["outcome"],
)
DRIFT_LAST_RUN = Gauge(
    "recserve_drift_last_run_timestamp_seconds",
    "When the drift job last computed the gauges (Unix seconds).",
    multiprocess_mode="livemax",
)
MODEL_INFO = Gauge(
    "recserve_model_info",
    "The model version being served (value 1 on the current version).",
    ["version", "model_type"],
    multiprocess_mode="liveall",
)
MODEL_TRAINED_TIMESTAMP = Gauge(
    "recserve_model_trained_timestamp_seconds",
    "When the served model was trained (Unix seconds). `recserve build` materialises the batch "
    "features in the same run, so its age is also the age of the batch features.",
    multiprocess_mode="livemostrecent",
)
MODEL_RELOADS = Counter(
    "recserve_model_reloads_total",
    "Attempts to serve a newly published model, by outcome: loaded, or refused (the model "
    "failed its checks and the previous one kept serving).",
    ["outcome"],
)
EVENT_FRESHNESS_SECONDS = Histogram(
    "recserve_event_freshness_seconds",
    "From an event's timestamp to the moment the user's next recommendation reflects it "
    "(online profile pushed, caches dropped). Includes the client's delay in sending it.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
)
EVENT_LOG_LAG = Gauge(
    "recserve_event_log_lag_events",
    "Events in the log not yet copied into the training data by `recserve consume` (the "
    "offline consumer group), sampled by the API.",
    ["group"],
    multiprocess_mode="max",
)
RECOMMENDATIONS = Counter(
    "recserve_recommendations_total",
    "Recommendation lists computed (cache misses), by source and the user's RFM segment "
    "(`none` when unknown).",
    ["source", "segment"],
)
DEPENDENCY_UP = Gauge(
    "recserve_dependency_up",
    "1 when a dependency answered its last check (a background probe every "
    "RECSERVE_DEPENDENCY_PROBE_SECONDS, and each /readyz), else 0.",
    ["dependency"],
    multiprocess_mode="liveall",
)
# Webhooks: the endpoint label is a configured endpoint name, so it stays bounded.
WEBHOOK_ENQUEUED = Counter(
    "recserve_webhook_enqueued_total",
    "Webhook deliveries written to the outbox, by endpoint and event kind.",
    ["endpoint", "kind"],
)
WEBHOOK_ENQUEUE_FAILURES = Counter(
    "recserve_webhook_enqueue_failures_total",
    "Event batches whose webhook deliveries could not be written to the outbox (the events "
    "themselves are stored).",
)
WEBHOOK_ATTEMPTS = Counter(
    "recserve_webhook_attempts_total",
    "Delivery attempts by endpoint and outcome: delivered (2xx), http_error (any other "
    "status) or transport_error (refused, timeout, reset).",
    ["endpoint", "outcome"],
)
WEBHOOK_RETRIES = Counter(
    "recserve_webhook_retries_total",
    "Failed attempts scheduled for another try after a backoff, by endpoint.",
    ["endpoint"],
)
WEBHOOK_DEAD_LETTERS = Counter(
    "recserve_webhook_dead_letters_total",
    "Deliveries parked in the dead-letter store after their last allowed attempt, by endpoint.",
    ["endpoint"],
)
WEBHOOK_OUTBOX = Gauge(
    "recserve_webhook_outbox",
    "The webhook outbox sampled by the delivery workers: `depth` (deliveries waiting), "
    "`oldest_age_seconds` (age of the oldest one) and `dead_letters` (parked).",
    ["measure"],
    multiprocess_mode="max",
)


ROLLOUT_CHALLENGER_SERVED = Gauge(
    "recserve_rollout_challenger_served",
    "1 while a worker serves a challenger model beside the champion (the guarded rollout).",
    multiprocess_mode="max",
)
ROLLOUT_DECISIONS = Counter(
    "recserve_rollout_decisions_total",
    "Challengers promoted or rolled back, by the sequential test or an operator.",
    ["decision", "decided_by"],
)
ROLLOUT_IMPRESSIONS = Gauge(
    "recserve_rollout_impressions",
    "Impressions attributed to each arm of the running rollout at the job's latest look.",
    ["arm"],
    multiprocess_mode="livemostrecent",
)
ROLLOUT_RATE = Gauge(
    "recserve_rollout_rate",
    "The compared rate (CTR or conversion) of each arm at the job's latest look.",
    ["arm"],
    multiprocess_mode="livemostrecent",
)
ROLLOUT_INTERVAL = Gauge(
    "recserve_rollout_difference_bound",
    "The always-valid interval of challenger minus champion rate at the latest look "
    "(`low`, `high`); a rollback when `high` < 0.",
    ["bound"],
    multiprocess_mode="livemostrecent",
)
ROLLOUT_REPORTS = Counter(
    "recserve_rollout_reports_total", "Before/after reports written for model changes."
)
ROLLOUT_JOB_ERRORS = Counter(
    "recserve_rollout_job_errors_total",
    "Looks of the rollout job that failed, by the store that failed (the next look retries).",
    ["store"],
)

M = TypeVar("M", bound=MetricWrapperBase)


@lru_cache(maxsize=4096)
def labelled(metric: M, *values: str) -> M:
    """``metric.labels(*values)``, remembered: the request path repeats a few label values,
    and ``labels`` takes a lock and rebuilds its key on every call."""
    return metric.labels(*values)


def _multiprocess() -> bool:
    # Decided by how prometheus_client stores values, fixed when it was first imported: Feast's
    # import sets PROMETHEUS_MULTIPROC_DIR for its own use, so the variable alone says nothing
    # about the metrics above.
    return values.ValueClass is not values.MutexValue and bool(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    )


# Feast registers its feature server's metrics (CPU, memory, request counts) on import; recserve
# never runs that server, so they would be constant zeros that look like measurements.
EXPORTED_PREFIXES = ("recserve_", "process_", "python_")


class _OwnMetrics(Collector):
    """The families of ``source`` recserve vouches for: its own and the process's."""

    def __init__(self, source: Collector | CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return (m for m in self._source.collect() if m.name.startswith(EXPORTED_PREFIXES))


def render_latest() -> tuple[bytes, str]:
    """The exposition text for ``/metrics``, aggregated across workers when multiprocess."""
    registry = CollectorRegistry(auto_describe=False)
    if _multiprocess():
        source: Collector | CollectorRegistry = multiprocess.MultiProcessCollector(None)
    else:
        source = DEFAULT_REGISTRY
    registry.register(_OwnMetrics(source))
    return generate_latest(registry), CONTENT_TYPE_LATEST
