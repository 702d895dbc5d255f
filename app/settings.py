"""All configuration, read from the environment (prefix ``RECSERVE_``) by pydantic-settings.

Nothing here performs I/O: a ``Settings`` object is a plain value that the CLI builds once and
passes down. Nested groups use ``__`` as delimiter, e.g. ``RECSERVE_CACHE__LOCAL_TTL_SECONDS=5``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.infra.redis_client import check_redis_url


class ApiSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Interface uvicorn binds to.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port uvicorn listens on.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes.")
    default_k: int = Field(10, ge=1, le=100, description="k when a request does not give one.")
    max_body_bytes: int = Field(
        1_048_576,
        ge=1024,
        description="Largest request body accepted; larger is 413 (checked on Content-Length "
        "and on the bytes actually received).",
    )
    max_explain_k: int = Field(
        20,
        ge=1,
        le=100,
        description="Largest k with explain=true; larger is 422 (an explained answer costs "
        "several plain ones).",
    )
    max_header_bytes: int = Field(
        32_768,
        ge=1024,
        description="Largest request head (request line and headers); larger is 431, refused "
        "while it arrives, before any key check.",
    )
    max_url_bytes: int = Field(8192, ge=256, description="Longest request URL; longer is 431.")
    max_headers: int = Field(100, ge=8, description="Most header fields in a request; more is 431.")
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Origins browsers may call the API from, e.g. ["https://shop.example"]; '
        "empty: no CORS headers, so browsers refuse cross-origin calls.",
    )


class CacheSettings(BaseModel):
    enabled: bool = Field(True, description="Serve repeated requests from the cache tiers.")
    local_max_entries: int = Field(50_000, ge=0, description="In-process LRU size per worker.")
    local_ttl_seconds: float = Field(30.0, gt=0, description="In-process entry lifetime.")
    redis_ttl_seconds: int = Field(300, ge=1, description="Shared Redis tier entry lifetime.")


class PrecomputeSettings(BaseModel):
    """``recserve precompute``: answers of the most active users computed in quiet hours and
    stored in the shared cache tier, so the peak starts warm."""

    quiet_start_hour: int = Field(
        2, ge=0, le=23, description="Quiet hours start at this hour (UTC, inclusive)."
    )
    quiet_end_hour: int = Field(
        5,
        ge=0,
        le=23,
        description="Quiet hours end at this hour (UTC, exclusive); below the start, they run "
        "past midnight. `recserve precompute` does nothing outside them (unless --force).",
    )
    users: int = Field(
        1000,
        ge=0,
        description="How many users to precompute: the most active by 30-day frequency (then "
        "interaction count) in the last build's behaviour features.",
    )
    max_age_seconds: int = Field(
        86_400,
        ge=60,
        description="Lifetime of a precomputed user's lists in the shared tier, counted from "
        "the precompute (a day: quiet hours' lists still serve the evening peak). A user's new "
        "event, feedback or erasure drops them before that, a new model or availability change "
        "changes their keys, and a list a request stores later caps them at "
        "cache.redis_ttl_seconds.",
    )
    k: list[int] = Field(
        default_factory=list,
        description="List lengths to precompute for /recommend, e.g. [10, 20]; empty: "
        "api.default_k.",
    )
    pages: list[str] = Field(
        default_factory=list,
        description="Content-block pages to precompute, each the comma-separated slot ids a page "
        'asks for, e.g. ["home-top,because-you-liked"]; empty: none.',
    )


class RedisSettings(BaseModel):
    socket_timeout_seconds: float = Field(
        0.05, gt=0, description="Bound on every Redis call made on the request path."
    )
    connect_timeout_seconds: float = Field(0.05, gt=0, description="Bound on connecting.")
    batch_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Bound on every Redis call of a batch job (connecting included): "
        "materializing the feature views into the online store writes thousands of rows per "
        "pipelined call, which the request-path bound is far too short for.",
    )
    retry_after_seconds: float = Field(
        2.0,
        gt=0,
        description="After a Redis failure, skip the shared tier this long before trying again.",
    )


class DatabaseSettings(BaseModel):
    """PostgreSQL, the system of record when ``database_url`` is set."""

    schema_name: str = Field(
        "recserve",
        pattern=r"^[a-z_][a-z0-9_]*$",
        description="Schema holding every record-of-truth table (created by the migrations).",
    )
    pool_min_size: int = Field(1, ge=0, description="Connections each store's pool keeps open.")
    pool_max_size: int = Field(
        8, ge=1, description="Most connections each store's pool opens (per process)."
    )
    pool_timeout_seconds: float = Field(
        2.0, gt=0, description="Wait this long for a free pooled connection before failing."
    )
    connect_timeout_seconds: int = Field(
        2, ge=1, description="Bound on opening one connection (libpq whole seconds)."
    )
    statement_timeout_ms: int = Field(
        2000, ge=1, description="Server-side bound on every statement a store runs."
    )
    migrate_on_start: bool = Field(
        True,
        description="The API applies pending migrations at start-up (under an advisory lock, "
        "so replicas starting together migrate once); off: run `recserve db upgrade` first.",
    )
    event_partition_days_ahead: int = Field(
        7,
        ge=1,
        description="Event log: daily partitions are created this many days ahead of today.",
    )


class RedisRoleUrls(BaseModel):
    """Where a role's Redis lives when it is not ``redis_url`` (e.g. the cache on its own
    instance, the event stream on a persistent one)."""

    cache: str | None = Field(
        None, description="Recommendation cache tier and its invalidation channel."
    )
    online_store: str | None = Field(None, description="Feast online store.")
    event_log: str | None = Field(None, description="Redis-Stream event log.")

    @field_validator("cache", "online_store", "event_log")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        return None if url is None else check_redis_url(url)


class FeastSettings(BaseModel):
    project: str = Field("recserve", description="Feast project name.")
    # Infinite registry cache: the registry is read once at start-up and never on a request.
    registry_cache_ttl_seconds: int = Field(
        0, ge=0, description="Feast registry cache TTL; 0 means read once per process."
    )
    sqlite_busy_timeout_ms: int = Field(
        50,
        ge=0,
        description="SQLite online store: how long a read waits for another process's lock "
        "before failing to the fallback (Feast's own default, 5 s, would stall the worker).",
    )
    decoded_memo_mb: int = Field(
        64,
        ge=0,
        description="Memory each worker may keep in each of two memos, decoded online feature "
        "values (by their stored bytes) and histories' item indices, so a profile unchanged "
        "since its last read is not decoded and mapped again; 0: decode every read.",
    )


class BuildGateSettings(BaseModel):
    """When ``recserve build`` refuses to publish: the last good data and model stay served."""

    max_quarantined_percent: float = Field(
        20.0,
        ge=0,
        le=100,
        description="Refuse a build when more than this share of the input rows (all tables) "
        "was quarantined. Empty or all-rejected input is always refused.",
    )
    max_interaction_drop_percent: float = Field(
        50.0,
        ge=0,
        le=100,
        description="Refuse a build whose accepted interactions are fewer than the current data "
        "version's by more than this share (a truncated export); 100 disables the check.",
    )
    schema_drift: Literal["refuse", "warn"] = Field(
        "refuse",
        description="An input column added, renamed or gone since the current data version: "
        "`refuse` the build, or `warn` and publish. A missing required column always refuses.",
    )


# Every event-log backend's redelivery delay unless told otherwise.
EVENT_ACK_WAIT_SECONDS = 60.0


class SparkSettings(BaseModel):
    """The Spark engine of the batch stages (``recserve build --engine spark``, extra ``spark``)."""

    master: str = Field(
        "local[2]",
        description="Spark master: `local[N]` (N cores of this machine), `spark://host:7077` "
        "(a standalone cluster) or `k8s://https://host:443` (Kubernetes). On a cluster HOME "
        "and the build's source must be paths every executor reads (and HOME writes) alike "
        "(a shared file system).",
    )
    driver_host: str = Field(
        "127.0.0.1",
        description="Address the driver binds and advertises; a cluster's executors must reach "
        "it, so set this machine's cluster-facing address there.",
    )
    shuffle_partitions: int = Field(
        8, ge=1, description="Partitions of each shuffle (spark.sql.shuffle.partitions)."
    )
    conf: dict[str, str] = Field(
        default_factory=dict,
        description='Further Spark properties as JSON, e.g. {"spark.executor.memory": "4g"}; '
        "they win over the ones above.",
    )


class EventLogSettings(BaseModel):
    backend: Literal["sqlite", "redis", "nats", "postgres"] | None = Field(
        None,
        description="Event log backend. Unset: PostgreSQL when RECSERVE_DATABASE_URL is set, "
        "else a Redis Stream when the event log has a Redis URL, else SQLite under HOME/events. "
        "`nats` is a NATS JetStream stream (extra `nats`).",
    )
    nats_url: str = Field(
        "nats://127.0.0.1:4222", description="NATS backend: server URL (comma-separate several)."
    )
    nats_stream: str = Field(
        "RECSERVE_EVENTS",
        description="NATS backend: JetStream stream name; each consumer group is a durable "
        "consumer of it named after the group, erasure epochs live in the key-value bucket "
        "STREAM_erasures.",
    )
    stream_key: str = Field(
        "recserve:events",
        description="Redis Stream key of the event log; dedupe keys are STREAM_KEY:seen:<id>.",
    )
    dedupe_window_seconds: int = Field(
        7 * 24 * 3600,
        ge=1,
        description="Redis and NATS backends: an event_id seen within this window is a "
        "duplicate. Redis: one small key (~100 bytes) per event in the window; NATS: JetStream's "
        "Nats-Msg-Id duplicate window (held in the server's memory). SQLite dedupes forever.",
    )
    ack_wait_seconds: float = Field(
        EVENT_ACK_WAIT_SECONDS,
        gt=0,
        description="An event a consumer group read but did not ack within this long (its "
        "consumer died or is stuck) is handed again to the group's next read. Longer than the "
        "slowest batch takes to process, or it is processed twice.",
    )
    max_stream_length: int | None = Field(
        None,
        ge=1,
        description="Redis backend: trim the stream towards this many entries on ack, removing "
        "only history every consumer group has acknowledged. Unset keeps everything, which the "
        "batch build replays.",
    )
    socket_timeout_seconds: float = Field(
        0.5,
        gt=0,
        description="Bound on every Redis or NATS call of the event log; a blocking Redis read "
        "must wait less than this.",
    )
    sqlite_busy_timeout_ms: int = Field(
        5000, ge=0, description="SQLite backend: wait this long for another process's write lock."
    )
    lag_sample_seconds: float = Field(
        15.0,
        gt=0,
        description="How often the API samples the offline consumer's lag "
        "(recserve_event_log_lag_events).",
    )


class AttributionSettings(BaseModel):
    window_seconds: int = Field(
        24 * 3600,
        ge=1,
        description="Feedback events count for the experiment variant that served the "
        "recommendation when they happen within this long after it (late conversions).",
    )
    clock_skew_seconds: float = Field(
        60.0,
        ge=0,
        description="How far a feedback event's timestamp (client clock, often whole seconds) "
        "may lie before the second the recommendation was served, or past the window, and "
        "still be attributed.",
    )
    redis_key_prefix: str = Field(
        "recserve:exp",
        description="Redis exposure store: keys are PREFIX:rec:<id>, PREFIX:counts:<experiment> "
        "and PREFIX:users:<experiment>:<variant>.",
    )


class RolloutSettings(BaseModel):
    """The guarded rollout of a newly built model (``app.rollout``, docs/operations.md)."""

    enabled: bool = Field(
        False,
        description="A build that finds a published model makes its model a challenger: it must "
        "match the champion's validation metric, then serves traffic_share of the traffic until "
        "the sequential test promotes or rolls it back. Off: a build publishes at once.",
    )
    traffic_share: float = Field(
        0.1, gt=0, lt=1, description="Share of all users the challenger serves during a rollout."
    )
    validation_metric: str = Field(
        "validation_ndcg@10_warm",
        min_length=1,
        description="The manifest's offline metric the challenger must match (higher is better).",
    )
    validation_margin: float = Field(
        0.0,
        ge=0,
        description="The challenger passes validation when its metric >= the champion's minus "
        "this (absolute).",
    )
    on_different_validation_data: Literal["refuse", "online_only"] = Field(
        "refuse",
        description="When the two models were validated on different data (another data "
        "fingerprint) their metrics are not comparable: `refuse` the build, or let the online "
        "test alone decide (`online_only`).",
    )
    metric: Literal["ctr", "conversion"] = Field(
        "ctr",
        description="Online rate the sequential test compares: clicks or conversions per "
        "impression.",
    )
    alpha: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="Bound on the chance of rolling back a challenger as good as the champion, "
        "however often the test looks (mixture SPRT).",
    )
    min_impressions: int = Field(
        2000, ge=100, description="Impressions each arm needs before a promotion."
    )
    max_impressions: int = Field(
        20000,
        ge=100,
        description="Impressions per arm after which a challenger not significantly worse is "
        "promoted.",
    )
    non_inferiority: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="Promote early (after min_impressions) when the always-valid interval rules "
        "out a relative loss larger than this.",
    )
    mixture_effect: float = Field(
        0.2,
        gt=0,
        description="Relative effect the mixture SPRT is tuned to detect fastest (its prior's "
        "standard deviation, times the champion's rate).",
    )
    decide_seconds: float = Field(
        30.0, gt=0, description="How often the server's rollout job looks at the test."
    )
    report_window_seconds: float = Field(
        86_400.0,
        gt=0,
        description="Before/after reports compare the engagement of this long before and after "
        "each model change.",
    )


class MonitoringSettings(BaseModel):
    online_quality: bool = Field(
        True,
        description="Record every /recommend answer in the exposure store so feedback events "
        "count towards CTR and conversion by model version, source, segment and device "
        "(recserve_quality_*). Off: only experiments are attributed.",
    )
    online_quality_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Share of the answers online quality records (drawn by a hash of the "
        "recommendation id; their feedback with them): CTR and conversion are ratios, so a "
        "sample measures them; the recserve_quality_* counters count the sample.",
    )
    drift_interval_seconds: float = Field(
        60.0,
        ge=0,
        description="How often each worker compares the latest events and sampled answers with "
        "the served model's training snapshot (recserve_drift_psi); 0 turns the drift job off.",
    )
    chart_sample_seconds: float = Field(
        10.0,
        ge=0,
        description="How often each worker samples the counters the console charts over time "
        "(an hour of samples at the default); 0 turns the sampling off.",
    )


class PrivacySettings(BaseModel):
    pseudonym_key: SecretStr | None = Field(
        None,
        min_length=16,
        description="Secret (16+ characters) of the keyed hashes (HMAC-SHA256) that stand for "
        "user ids in the consent store and the erasure list. Unset: a public development key, "
        "with a warning at start-up. Changing it orphans every stored consent and erasure.",
    )
    default_personalization: bool = Field(
        True, description="Consent to personalisation of a user who has never set it."
    )
    default_tracking: bool = Field(
        True, description="Consent to storing the events of a user who has never set it."
    )
    consent_redis_prefix: str = Field(
        "recserve:consent",
        description="Redis consent store: PREFIX:<pseudonym> (current choices), "
        "PREFIX:<pseudonym>:history, invalidations on PREFIX:invalidate.",
    )
    consent_cache_ttl_seconds: float = Field(
        10.0,
        gt=0,
        description="Redis consent store: each worker keeps a user's consent this long; changes "
        "reach every worker at once over pub/sub (a stream on a Redis Cluster), the TTL bounds a "
        "missed one.",
    )
    consent_cache_max_entries: int = Field(
        100_000, ge=0, description="Users whose consent each worker keeps (either store)."
    )


class AvailabilitySettings(BaseModel):
    refresh_seconds: float = Field(
        1.0,
        gt=0,
        description="Each worker polls the item availability overrides this often; a change "
        "made through another worker shows within this delay.",
    )
    sqlite_path: Path | None = Field(
        None, description="Embedded override store; defaults to HOME/catalogue/availability.db."
    )
    redis_key: str = Field(
        "recserve:availability",
        description="With redis_url: hash of overrides, KEY:generation its change counter.",
    )


ApiScope = Literal["recommend", "events", "admin"]


class ApiKeySpec(BaseModel):
    """One API key: the secret or its SHA-256 (hex), and what it may do."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Who holds the key; logged, unlike the key.")
    key: SecretStr | None = Field(None, min_length=16, description="The key itself.")
    sha256: str | None = Field(
        None, pattern="^[0-9a-fA-F]{64}$", description="Hex SHA-256 of the key, instead of it."
    )
    scopes: list[ApiScope] = Field(min_length=1, description="What the key may call.")

    @model_validator(mode="after")
    def _one_secret(self) -> ApiKeySpec:
        if (self.key is None) == (self.sha256 is None):
            raise ValueError(f"API key {self.name!r}: give exactly one of `key` and `sha256`")
        return self


class AuthSettings(BaseModel):
    enabled: bool | None = Field(
        None,
        description="Require API keys. Unset: required as soon as any key is configured; "
        "true without keys refuses to start; false serves every route openly.",
    )
    keys: list[ApiKeySpec] = Field(
        default_factory=list, description="API keys, e.g. as JSON in RECSERVE_AUTH__KEYS."
    )
    keys_file: Path | None = Field(
        None, description="TOML file of further keys ([[keys]] tables with the same fields)."
    )
    open_recommend: bool = Field(
        False, description="Serve /recommend and /items/*/similar without a key."
    )
    open_metrics: bool = Field(True, description="Serve /metrics without a key (else admin).")
    open_docs: bool = Field(
        False,
        description="Serve /docs, /redoc and /openapi.json without a key (else admin) when "
        "keys are required; with no key configured they are open like every route.",
    )
    user_token_secret: SecretStr | None = Field(
        None,
        min_length=32,
        description="Secret the shop's backend signs user tokens (X-User-Token) with; "
        "without it only admin keys see a user's history and attributes in answers.",
    )
    user_token_ttl_seconds: int = Field(
        3600, ge=60, le=86_400 * 30, description="Lifetime of a token `recserve user-token` mints."
    )


WebhookEventKind = Literal[
    "engagement.click",
    "engagement.add_to_cart",
    "engagement.purchase",
    "profile.segment_changed",
    "model.challenger_started",
    "model.promoted",
    "model.rolled_back",
]


class WebhookEndpointSpec(BaseModel):
    """One CRM receiver: where to POST, the shared signing secret, and what it subscribes to."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Stable identifier; a metric label and part of each delivery id.",
    )
    url: HttpUrl = Field(description="Where deliveries are POSTed (http or https).")
    secret: SecretStr = Field(
        min_length=16, description="HMAC-SHA256 signing key shared with the receiver; never logged."
    )
    events: list[WebhookEventKind] = Field(min_length=1, description="Event kinds subscribed.")
    timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="Bound on one delivery attempt (connect + response)."
    )


class WebhookSettings(BaseModel):
    endpoints: list[WebhookEndpointSpec] = Field(
        default_factory=list,
        description="CRM webhook endpoints, e.g. as JSON in RECSERVE_WEBHOOKS__ENDPOINTS.",
    )
    endpoints_file: Path | None = Field(
        None, description="TOML file of further endpoints ([[endpoints]] with the same fields)."
    )
    max_attempts: int = Field(
        8, ge=1, le=100, description="Failed attempts before a delivery is dead-lettered."
    )
    backoff_initial_seconds: float = Field(
        1.0, gt=0, description="Delay before the first retry; doubles per failure, with jitter."
    )
    backoff_max_seconds: float = Field(600.0, gt=0, description="Ceiling of the retry delay.")
    lease_seconds: float = Field(
        60.0,
        gt=0,
        description="A claimed delivery belongs to one worker this long; it must exceed every "
        "endpoint's timeout. A worker that dies mid-delivery frees it when the lease ends.",
    )
    poll_interval_seconds: float = Field(
        0.5, gt=0, description="Idle delivery worker checks the outbox this often."
    )
    batch_size: int = Field(20, ge=1, le=500, description="Deliveries claimed (and sent) at once.")
    redis_key_prefix: str = Field(
        "recserve:webhooks",
        description="Redis outbox keys: PREFIX:msg:<delivery id>, PREFIX:due, PREFIX:enqueued, "
        "PREFIX:dead.",
    )


class Settings(BaseSettings):
    """Top-level settings. ``home`` holds every piece of generated state."""

    model_config = SettingsConfigDict(
        env_prefix="RECSERVE_", env_nested_delimiter="__", extra="ignore"
    )

    home: Path = Field(
        Path(".recserve"),
        description="Directory for all generated state: data, features, models, logs. A "
        "relative path is taken from the working directory at start-up.",
    )
    redis_url: str | None = Field(
        None,
        description="When set (e.g. redis://127.0.0.1:6379/0), Redis is the Feast online store "
        "and the shared recommendation cache tier. Unset: SQLite online store, in-process cache. "
        "A Redis Cluster is redis+cluster://host:port,host:port/ (TLS: rediss+cluster://), "
        "naming seed nodes; this and every RECSERVE_REDIS_URLS__* take either form.",
    )
    redis_urls: RedisRoleUrls = RedisRoleUrls()
    database_url: SecretStr | None = Field(
        None,
        description="When set (e.g. postgresql://app@db.internal:5432/recserve), PostgreSQL holds "
        "the records of truth: consent, exposures, the webhook outbox, availability overrides, "
        "erasure tombstones and the event log (extra `postgres`). Unset: SQLite files (or Redis "
        "with redis_url) under the home.",
    )
    database: DatabaseSettings = DatabaseSettings()
    models_dir: Path | None = Field(
        None, description="Where model versions live; defaults to HOME/models."
    )
    segment_clusters: int | None = Field(
        None,
        ge=2,
        le=20,
        description="K-Means clusters for RFM segments; unset picks 2..8 by silhouette.",
    )
    keep_data_versions: int | None = Field(
        None,
        ge=1,
        description="After each published build, remove the data versions (Delta table files "
        "and their models) older than the newest N, as `recserve data vacuum --keep N` does. "
        "Unset: every version stays until vacuumed by hand.",
    )
    batch_engine: Literal["local", "spark"] = Field(
        "local",
        description="What runs the heavy batch stages of `build` and `segment` (the validation "
        "of an atomic source's interactions, the behaviour features, the K-Means segments, the "
        "popularity, transition and co-occurrence counts of the model): this process (`local`) "
        "or Spark (`spark`, extra `spark`, see spark__*). Both write the same tables.",
    )
    spark: SparkSettings = SparkSettings()
    dense_max_items: int = Field(
        5_000,
        ge=0,
        description="Largest catalogue `build` trains as the dense hybrid (item x item "
        "matrices, 4 n^2 bytes each, memory-mapped from the model's weights file and shared "
        "by the workers: 1.15 GB of files and a 7-minute build at 10k items, and every item "
        "scored per request); a larger one gets the two-stage model: ANN candidates ranked by "
        "an ONNX graph, its arrays memory-mapped too. 0 forces the two-stage model.",
    )
    api: ApiSettings = ApiSettings()
    cache: CacheSettings = CacheSettings()
    precompute: PrecomputeSettings = PrecomputeSettings()
    redis: RedisSettings = RedisSettings()
    feast: FeastSettings = FeastSettings()
    events: EventLogSettings = EventLogSettings()
    build_gates: BuildGateSettings = BuildGateSettings()
    experiments_file: Path | None = Field(
        None,
        description="TOML file declaring A/B experiments (see examples/experiments.toml), "
        "validated at start-up. Unset: no experiments, every request gets the default.",
    )
    attribution: AttributionSettings = AttributionSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    privacy: PrivacySettings = PrivacySettings()
    auth: AuthSettings = AuthSettings()
    webhooks: WebhookSettings = WebhookSettings()
    model_poll_seconds: float = Field(
        5.0,
        ge=0,
        description="How often each worker checks HOME/models/CURRENT for a new model to load "
        "(checked before it replaces the served one); 0 disables the poll.",
    )
    log_format: Literal["json", "text"] | None = Field(
        None,
        description="Log lines of the batch commands (build, consume, segment...): `json` as "
        "the server writes them, or `text`. Unset: json unless stderr is a terminal. The "
        "server always writes JSON.",
    )
    dependency_probe_seconds: float = Field(
        15.0,
        gt=0,
        description="How often each worker checks its dependencies in the background and "
        "updates recserve_dependency_up (/readyz checks them too, on demand).",
    )
    business_rules_file: Path | None = Field(
        None,
        description="TOML business rules applied to every list returned (see "
        "examples/business_rules.toml): category and price filters, boosts. Unset: only hidden "
        "and out-of-stock items are left out.",
    )
    content_slots_file: Path | None = Field(
        None,
        description="TOML file declaring CMS content slots (see examples/content_slots.toml), "
        "validated at start-up. Unset: no slots, /content-blocks answers 404.",
    )
    availability: AvailabilitySettings = AvailabilitySettings()
    rollout: RolloutSettings = RolloutSettings()

    def embedded_at(self, home: Path) -> Settings:
        """These settings on a private ``home`` with the embedded stores only (SQLite online
        store and records, in-process cache): a scratch build never touches the configured
        Redis, database or models."""
        return self.model_copy(
            update={
                "home": home,
                "redis_url": None,
                "redis_urls": RedisRoleUrls(),
                "database_url": None,
                "models_dir": None,
                "events": self.events.model_copy(update={"backend": None}),
            }
        )

    def redis_url_for(self, role: Literal["cache", "online_store", "event_log"]) -> str | None:
        """The Redis a role uses: its own URL when given, else ``redis_url``."""
        return getattr(self.redis_urls, role) or self.redis_url

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        return None if url is None else check_redis_url(url)

    @field_validator("home", "models_dir")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        # Feast resolves relative paths against its repo path (HOME/feast), not the working
        # directory: a relative home would put the registry at HOME/feast/HOME/feast.
        return None if path is None else path.expanduser().absolute()

    @property
    def data_dir(self) -> Path:
        """Validated, standardised tables written by ingestion (Parquet)."""
        return self.home / "data"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "data" / "quarantine"

    @property
    def offline_dir(self) -> Path:
        """Feast offline source tables (Parquet)."""
        return self.home / "offline"

    @property
    def versions_dir(self) -> Path:
        """Versioned tables (Delta Lake), the build history and the staging of running builds."""
        return self.home / "versions"

    @property
    def feast_dir(self) -> Path:
        """Feast registry and SQLite online store."""
        return self.home / "feast"

    @property
    def events_dir(self) -> Path:
        """The embedded (SQLite) event log."""
        return self.home / "events"

    @property
    def webhooks_dir(self) -> Path:
        """The embedded (SQLite) webhook outbox and dead letters."""
        return self.home / "webhooks"

    @property
    def experiments_dir(self) -> Path:
        """The embedded (SQLite) experiment exposure store."""
        return self.home / "experiments"

    @property
    def rollout_dir(self) -> Path:
        """The embedded (SQLite) record of rollouts, model changes and their reports."""
        return self.home / "rollout"

    @property
    def availability_db(self) -> Path:
        """The embedded (SQLite) item availability overrides."""
        path = self.availability.sqlite_path
        return path if path is not None else self.home / "catalogue" / "availability.db"

    @property
    def privacy_dir(self) -> Path:
        """The embedded consent store and the erasure list the build honours."""
        return self.home / "privacy"

    @property
    def event_parts_dir(self) -> Path:
        """Events copied out of the log for the next build (Parquet parts)."""
        return self.home / "events" / "parts"

    @property
    def model_root(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.home / "models"
