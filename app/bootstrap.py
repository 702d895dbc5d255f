"""The composition root: build the engine, its stores and every service around it from
settings, once per process (called by the API's lifespan and the CLI). The only module that
knows every package; the packages themselves know only what they use."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from app.artifacts import PublicationError, current_version
from app.events.log import EventLog, open_event_log
from app.experiments.attribution import ExposureStore, ExposureStoreUnavailable
from app.experiments.guarded import BreakerExposureStore
from app.experiments.store import open_exposure_store
from app.features.client import FeastFeatureClient, FeatureClient, FeatureStoreError
from app.features.erase import OnlineUserEraser
from app.features.guarded import BreakerFeatureClient
from app.features.push import FeastBehaviourStore
from app.feedback.open import open_feedback_store
from app.feedback.service import UserFeedback
from app.infra.breaker import CircuitBreaker
from app.monitoring.answers import AnswerMonitor, AnswerReservoir
from app.monitoring.quality import QualityTracker
from app.observability import metrics
from app.privacy.consent_redis import RedisConsentStore
from app.privacy.consent_sqlite import CONSENT_FILE, SqliteConsentStore
from app.privacy.erasure import UserDataService
from app.privacy.pseudonym import Pseudonymizer
from app.privacy.service import ConsentService, policy_from_settings
from app.privacy.tombstones import open_tombstones
from app.rollout.actions import RolloutContext
from app.rollout.job import RolloutJob
from app.rollout.store import RolloutStore, open_rollout_store
from app.serving.cache.invalidation import SubscribedLocalCache, subscriber_client_from_url
from app.serving.cache.local_tier import LocalCache
from app.serving.cache.precomputed import PrecomputeTier
from app.serving.cache.redis_tier import RedisCache, redis_client_from_url
from app.serving.cache.tiered import TieredCache
from app.serving.catalogue.availability import (
    AvailabilityStore,
    RedisAvailabilityStore,
    SqliteAvailabilityStore,
)
from app.serving.catalogue.items import load_catalogue
from app.serving.catalogue.rule_config import load_business_rules
from app.serving.catalogue.rules import ItemRules
from app.serving.experiments.rollout import ChallengerServing
from app.serving.experiments.service import ExperimentService
from app.serving.experiments.strategies import StrategyRecommender, load_experiment_setup
from app.serving.model.ranking import LoadedModel, ModelLoadError, load_model
from app.serving.realtime.event_ingest import EventIngestor, EventListener
from app.serving.realtime.profile_updates import ProfileUpdater
from app.serving.recommend.engine import RecommendationEngine
from app.serving.surfaces.content_blocks import ContentBlocks
from app.serving.surfaces.content_slots import load_slots
from app.settings import Settings
from app.webhooks.outbox import Outbox
from app.webhooks.publisher import WebhookPublisher
from app.webhooks.types import OutboxUnavailable

log = logging.getLogger(__name__)


def migrate_database(settings: Settings) -> None:
    """Bring the database of record's schema to the newest revision when ``database_url`` is
    set and ``database.migrate_on_start`` allows it (blocking: call from a worker thread)."""
    if settings.database_url is None or not settings.database.migrate_on_start:
        return
    # Imported here: Alembic and psycopg are the optional extra `postgres`.
    from app.storage.postgres import upgrade

    upgrade(settings.database_url.get_secret_value(), settings.database.schema_name)


def load_current_model(settings: Settings) -> LoadedModel:
    root = settings.model_root
    try:
        version = current_version(root)
    except PublicationError as exc:
        raise ModelLoadError(str(exc)) from exc
    if version is None:
        raise ModelLoadError(
            f"no published model under {root}: run `recserve build --data DIR` first"
        )
    return load_model(root / version)


def build_cache(settings: Settings) -> TieredCache | None:
    """The cache tiers from settings; call from the running event loop (with Redis it starts
    the worker's invalidation subscriber, stopped by ``TieredCache.close``)."""
    if not settings.cache.enabled:
        return None
    local = LocalCache(settings.cache.local_max_entries, settings.cache.local_ttl_seconds)
    redis_url = settings.redis_url_for("cache")
    if not redis_url:
        # Without Redis no channel reaches the other workers' in-process tiers, so with several
        # workers there is no cache at all: each computes fresh and read-your-writes holds.
        return TieredCache([local], on_result=_count_lookup) if settings.api.workers == 1 else None
    shared = _shared_tier(settings, redis_url)
    subscribed = SubscribedLocalCache(
        local,
        subscriber_client_from_url(redis_url, settings.redis.connect_timeout_seconds),
        shared.channel,
        on_error=_count_cache_error("local"),
    )
    subscribed.start()
    return TieredCache([subscribed, shared], on_result=_count_lookup)


class NoSharedCacheTier(Exception):
    """Precomputing needs the shared (Redis) cache tier, which these settings do not have."""


def build_precompute_tier(settings: Settings) -> PrecomputeTier:
    """The shared tier as the precompute job writes it; raises ``NoSharedCacheTier``."""
    redis_url = settings.redis_url_for("cache")
    if not settings.cache.enabled or not redis_url:
        raise NoSharedCacheTier(
            "precompute needs the shared cache tier: set RECSERVE_REDIS_URL (or "
            "RECSERVE_REDIS_URLS__CACHE) with the cache enabled; without Redis each worker's "
            "cache lives in its own process, out of a job's reach"
        )
    return PrecomputeTier(_shared_tier(settings, redis_url), settings.precompute.max_age_seconds)


def _shared_tier(settings: Settings, redis_url: str) -> RedisCache:
    client = redis_client_from_url(
        redis_url,
        socket_timeout=settings.redis.socket_timeout_seconds,
        connect_timeout=settings.redis.connect_timeout_seconds,
    )
    return RedisCache(
        client,
        ttl_seconds=settings.cache.redis_ttl_seconds,
        breaker=CircuitBreaker(settings.redis.retry_after_seconds),
        on_error=_count_cache_error("redis"),
    )


def _count_lookup(tier: str, hit: bool) -> None:
    metrics.labelled(metrics.CACHE_LOOKUPS, tier, "hit" if hit else "miss").inc()


def _count_cache_error(tier: str) -> Callable[[str, BaseException], None]:
    def on_error(operation: str, _exc: BaseException) -> None:
        metrics.CACHE_ERRORS.labels(tier, operation).inc()

    return on_error


async def build_engine(settings: Settings) -> RecommendationEngine:
    return await engine_with_cache(settings, build_cache(settings))


async def engine_with_cache(settings: Settings, cache: TieredCache | None) -> RecommendationEngine:
    """The engine of ``build_engine`` in front of ``cache`` (the precompute job's own)."""
    model = load_current_model(settings)
    features = FeastFeatureClient.from_settings(settings)
    try:
        # Read the registry now so the first request does not pay for it.
        features.load_registry()
    except FeatureStoreError as exc:
        # Serve anyway: requests fall back to popular items and /readyz names the store.
        log.warning("feature store not ready at start-up: %s", exc)
    consent = build_consent(settings)
    rules = build_item_rules(settings, model)
    # A hung Redis would cost each read its socket timeout; a failing SQLite file fails at once
    # and needs no breaker (and recovers on the very next read).
    reads: FeatureClient = (
        BreakerFeatureClient(features, CircuitBreaker(settings.redis.retry_after_seconds))
        if settings.redis_url_for("online_store")
        else features
    )
    return RecommendationEngine(
        model,
        reads,
        cache,
        consent=consent,
        rules=rules,
        history_memo_bytes=settings.feast.decoded_memo_mb * 2**20,
        feedback=UserFeedback(open_feedback_store(settings), consent.pseudonyms.of),
    )


def build_item_rules(settings: Settings, model: LoadedModel) -> ItemRules:
    """The model's item catalogue, the business rules file and the availability overrides
    (PostgreSQL with ``database_url``, Redis with ``redis_url``, else SQLite under the home).
    Raises ``RulesConfigError`` for an unusable rules file and ``ModelLoadError`` for a corrupt
    catalogue."""
    store: AvailabilityStore
    if settings.database_url is not None:
        # Imported here: psycopg is the optional extra `postgres`.
        from app.serving.catalogue.availability_postgres import (
            PostgresAvailabilityStore,
            unavailable,
        )
        from app.storage.postgres import database_from_settings

        store = PostgresAvailabilityStore(database_from_settings(settings, unavailable))
    elif settings.redis_url:
        client = redis_client_from_url(
            settings.redis_url,
            socket_timeout=settings.redis.socket_timeout_seconds,
            connect_timeout=settings.redis.connect_timeout_seconds,
        )
        store = RedisAvailabilityStore(client, settings.availability.redis_key)
    else:
        store = SqliteAvailabilityStore(
            settings.availability_db, busy_timeout_ms=settings.events.sqlite_busy_timeout_ms
        )
    return ItemRules(
        load_catalogue(settings.model_root / model.version, model),
        model.version,
        settings.model_root,
        load_business_rules(settings.business_rules_file),
        store,
        settings.availability.refresh_seconds,
    )


def build_consent(settings: Settings) -> ConsentService:
    """Consent in PostgreSQL with ``database_url`` (every worker reads the table: always
    current), else in SQLite under the home (each worker reads the file: always current), or in
    Redis behind a per-worker cache that every change invalidates over pub/sub. Call from the
    running event loop (the Redis cache starts its subscriber)."""
    pseudonyms = Pseudonymizer.from_settings(settings)
    policy = policy_from_settings(settings)
    if settings.database_url is not None:
        # Imported here: psycopg is the optional extra `postgres`.
        from app.privacy.consent_postgres import PostgresConsentStore, unavailable
        from app.storage.postgres import database_from_settings

        database = database_from_settings(settings, unavailable)
        return ConsentService(PostgresConsentStore(database), policy, pseudonyms)
    if not settings.redis_url:
        store = SqliteConsentStore(
            settings.privacy_dir / CONSENT_FILE,
            busy_timeout_ms=settings.events.sqlite_busy_timeout_ms,
            cache_max_entries=settings.privacy.consent_cache_max_entries,
        )
        return ConsentService(store, policy, pseudonyms)
    shared = RedisConsentStore(
        redis_client_from_url(
            settings.redis_url,
            socket_timeout=settings.redis.socket_timeout_seconds,
            connect_timeout=settings.redis.connect_timeout_seconds,
        ),
        prefix=settings.privacy.consent_redis_prefix,
        breaker=CircuitBreaker(settings.redis.retry_after_seconds),
    )
    cache = SubscribedLocalCache(
        LocalCache(
            settings.privacy.consent_cache_max_entries, settings.privacy.consent_cache_ttl_seconds
        ),
        subscriber_client_from_url(settings.redis_url, settings.redis.connect_timeout_seconds),
        shared.channel,
        on_error=_count_cache_error("consent"),
    )
    cache.start()
    return ConsentService(shared, policy, pseudonyms, cache=cache)


async def close_engine(engine: RecommendationEngine) -> None:
    if engine.cache is not None:
        await engine.cache.close()
    if engine.consent is not None:
        await engine.consent.close()
    if engine.rules is not None:
        await engine.rules.close()
    if engine.feedback is not None:
        await engine.feedback.close()
    engine.features.close()


def build_event_ingest(
    settings: Settings, engine: RecommendationEngine, listeners: Sequence[EventListener] = ()
) -> EventIngestor:
    """The event log (SQLite, or a Redis Stream with ``redis_url``) and the behaviour store,
    sharing the engine's feature client and cache so ingested events reach the next answer;
    ``listeners`` see every batch's stored events (e.g. experiment attribution)."""
    updater = ProfileUpdater(FeastBehaviourStore.from_settings(settings), engine.cache)
    return EventIngestor(open_event_log(settings), updater, listeners, consent=engine.consent)


def build_experiments(
    settings: Settings, engine: RecommendationEngine
) -> tuple[ExperimentService, StrategyRecommender]:
    """The experiments file's experiments with their exposure store (Redis with ``redis_url``,
    else SQLite under the home) and the recommender that applies their strategies. Raises
    ``ExperimentConfigError`` for a file serving cannot use."""
    experiments, pinned = load_experiment_setup(settings.experiments_file, settings.model_root)
    service = ExperimentService(
        experiments,
        guarded_exposure_store(settings),
        engine.segment,
        timedelta(seconds=settings.attribution.window_seconds),
        user_pseudonyms(settings, engine),
        clock_skew=timedelta(seconds=settings.attribution.clock_skew_seconds),
    )
    return service, StrategyRecommender(engine, pinned)


def build_challenger(
    settings: Settings,
    engine: RecommendationEngine,
    experiments: ExperimentService,
    recommender: StrategyRecommender,
) -> ChallengerServing:
    """This worker's view of the guarded rollout: it serves the version ``CHALLENGER`` names to
    the configured share of users (call ``refresh`` to load it)."""
    config = settings.rollout
    return ChallengerServing(
        engine,
        experiments,
        recommender,
        settings.model_root,
        share=config.traffic_share,
        alpha=config.alpha,
        effect=config.mixture_effect,
    )


def start_rollout_job(
    settings: Settings,
    experiments: ExperimentService,
    event_log: EventLog,
    publisher: WebhookPublisher,
    challenger: ChallengerServing,
) -> tuple[RolloutStore, asyncio.Task[None]]:
    """The rollout record store and the job's background task (one look every
    ``rollout.decide_seconds``; the workers take turns). Call from the running event loop."""
    store = open_rollout_store(settings)
    job = RolloutJob(
        RolloutContext(settings, store, publisher.notify_model_change),
        experiments.variant_counts,
        event_log,
        challenger.refusal,
    )
    return store, asyncio.create_task(job.run(settings.rollout.decide_seconds))


def guarded_exposure_store(settings: Settings) -> ExposureStore:
    """The exposure store, behind a circuit breaker when remote: PostgreSQL and Redis may hang;
    SQLite is local, so it fails fast or recovers on the next call."""
    store = open_exposure_store(settings)
    if settings.database_url is not None or settings.redis_url:
        store = BreakerExposureStore(store, CircuitBreaker(settings.redis.retry_after_seconds))
    return store


def build_monitor(settings: Settings) -> AnswerMonitor:
    """The online quality tracker (its own exposure store connection, unless turned off) and
    the drift job's answer reservoir."""
    quality = None
    if settings.monitoring.online_quality:
        quality = QualityTracker(
            guarded_exposure_store(settings),
            timedelta(seconds=settings.attribution.window_seconds),
            clock_skew=timedelta(seconds=settings.attribution.clock_skew_seconds),
            sample_share=settings.monitoring.online_quality_share,
        )
    return AnswerMonitor(quality, AnswerReservoir())


def user_pseudonyms(settings: Settings, engine: RecommendationEngine) -> Pseudonymizer:
    """The pseudonyms every store keys users by: the consent service's, so the process has
    one key (and logs the missing-key warning once)."""
    if engine.consent is not None:
        return engine.consent.pseudonyms
    return Pseudonymizer.from_settings(settings)


def build_content_blocks(
    settings: Settings, engine: RecommendationEngine, recommender: StrategyRecommender
) -> ContentBlocks:
    """The slots file's content slots, checked against the catalogue; raises
    ``RulesConfigError`` naming the file, slot and field."""
    rules = engine.rules
    if rules is None:
        raise RuntimeError("content blocks need an engine built with business rules")
    slots = load_slots(settings.content_slots_file, rules.catalogue)
    return ContentBlocks(slots, engine, rules, recommender)


def build_user_data(
    settings: Settings,
    engine: RecommendationEngine,
    ingest: EventIngestor,
    experiments: ExperimentService,
    outbox: Outbox,
) -> UserDataService:
    """Erasure and export over the stores the engine, the event ingestor, the experiments and
    the webhooks already hold."""
    if engine.consent is None or engine.feedback is None:
        raise ValueError("the engine was built without a consent service or feedback store")
    return UserDataService(
        engine.consent,
        engine.features,
        OnlineUserEraser.from_settings(settings),
        ingest.event_log,
        engine.cache,
        open_tombstones(settings),
        [settings.data_dir, settings.offline_dir, settings.event_parts_dir],
        experiments,
        outbox,
        engine.feedback,
        unreachable=(ExposureStoreUnavailable, OutboxUnavailable),
        redis_urls=redis_instances(settings),
    )


def redis_instances(settings: Settings) -> list[str]:
    """Every Redis the service writes a user's data to, each once."""
    urls = [
        settings.redis_url,
        settings.redis_url_for("cache"),
        settings.redis_url_for("online_store"),
        settings.redis_url_for("event_log"),
    ]
    return list(dict.fromkeys(url for url in urls if url is not None))
