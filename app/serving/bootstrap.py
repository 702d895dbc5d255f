"""Build the engine and its clients from settings, once per process (called by the lifespan)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.artifacts import current_version
from app.events.log import open_event_log
from app.features.client import FeastFeatureClient, FeatureStoreError
from app.features.push import FeastProfileWriter
from app.observability import metrics
from app.serving.breaker import CircuitBreaker
from app.serving.cache import TieredCache
from app.serving.cache_local import LocalCache
from app.serving.cache_redis import RedisCache, redis_client_from_url
from app.serving.engine import RecommendationEngine
from app.serving.event_ingest import EventIngestor
from app.serving.invalidation import SubscribedLocalCache, subscriber_client_from_url
from app.serving.profile_updates import ProfileUpdater
from app.serving.ranking import LoadedModel, ModelLoadError, load_model
from app.settings import Settings

log = logging.getLogger(__name__)


def load_current_model(settings: Settings) -> LoadedModel:
    root = settings.model_root
    version = current_version(root)
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
    if not settings.redis_url:
        # Without Redis no channel reaches the other workers' in-process tiers, so with several
        # workers there is no cache at all: each computes fresh and read-your-writes holds.
        return TieredCache([local], on_result=_count_lookup) if settings.api.workers == 1 else None
    client = redis_client_from_url(
        settings.redis_url,
        socket_timeout=settings.redis.socket_timeout_seconds,
        connect_timeout=settings.redis.connect_timeout_seconds,
    )
    shared = RedisCache(
        client,
        ttl_seconds=settings.cache.redis_ttl_seconds,
        breaker=CircuitBreaker(settings.redis.retry_after_seconds),
        on_error=_count_cache_error("redis"),
    )
    subscribed = SubscribedLocalCache(
        local,
        subscriber_client_from_url(settings.redis_url, settings.redis.connect_timeout_seconds),
        shared.channel,
        on_error=_count_cache_error("local"),
    )
    subscribed.start()
    return TieredCache([subscribed, shared], on_result=_count_lookup)


def _count_lookup(tier: str, hit: bool) -> None:
    metrics.CACHE_LOOKUPS.labels(tier, "hit" if hit else "miss").inc()


def _count_cache_error(tier: str) -> Callable[[str, BaseException], None]:
    def on_error(operation: str, _exc: BaseException) -> None:
        metrics.CACHE_ERRORS.labels(tier, operation).inc()

    return on_error


async def build_engine(settings: Settings) -> RecommendationEngine:
    model = load_current_model(settings)
    features = FeastFeatureClient.from_settings(settings)
    try:
        # Read the registry now so the first request does not pay for it.
        features.load_registry()
    except FeatureStoreError as exc:
        # Serve anyway: requests fall back to popular items and /readyz names the store.
        log.warning("feature store not ready at start-up: %s", exc)
    return RecommendationEngine(model, features, build_cache(settings))


async def close_engine(engine: RecommendationEngine) -> None:
    if engine.cache is not None:
        await engine.cache.close()
    engine.features.close()


def build_event_ingest(settings: Settings, engine: RecommendationEngine) -> EventIngestor:
    """The event log (SQLite, or a Redis Stream with ``redis_url``) and the profile writer,
    sharing the engine's feature client and cache so ingested events reach the next answer."""
    writer = FeastProfileWriter.from_settings(settings)
    updater = ProfileUpdater(engine.features, writer, engine.cache)
    return EventIngestor(open_event_log(settings), updater)
