"""The request path: cache -> features -> scoring -> filters -> fallback.

``RecommendationEngine.recommend`` never raises for a dependency failure: a failing feature
store or model turns into the popularity fallback with a counted reason, and a failing cache
tier is skipped (the cache itself swallows and reports its errors).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

import numpy as np
import orjson

from app.features.client import FeatureClient, FeatureStoreError
from app.features.schema import UserFeatures
from app.observability import metrics
from app.serving.cache import TieredCache
from app.serving.fallback import popular_items
from app.serving.filters import top_k
from app.serving.ranking import LoadedModel
from app.serving.types import (
    FallbackReason,
    Recommendation,
    RecommendRequest,
    ScoredItem,
    Source,
)

log = logging.getLogger(__name__)


class RecommendationEngine:
    """Holds the clients built at start-up and answers one user at a time."""

    def __init__(
        self,
        model: LoadedModel,
        features: FeatureClient,
        cache: TieredCache | None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._model = model
        self._features = features
        self._cache = cache
        self._clock = clock
        _publish_model_info(model)

    @property
    def model(self) -> LoadedModel:
        return self._model

    @property
    def features(self) -> FeatureClient:
        return self._features

    @property
    def cache(self) -> TieredCache | None:
        return self._cache

    async def recommend(self, request: RecommendRequest) -> Recommendation:
        model = self._model  # one version for the whole request, even if a reload lands
        variant = _variant_key(model.version, request)
        if self._cache is not None and request.use_cache:
            payload, tier = await self._cache.get(request.user_id, variant)
            if payload is not None:
                return _from_cache(request.user_id, payload, tier)
        answer = self._compute(model, request)
        if self._cache is not None and answer.fallback_reason is None:
            await self._cache.set(request.user_id, variant, _to_cache(answer))
        return answer

    def _compute(self, model: LoadedModel, request: RecommendRequest) -> Recommendation:
        started = self._clock()
        try:
            user = self._features.get_user(request.user_id)
        except FeatureStoreError as exc:
            log.warning("feature store failed, serving popular: %s", exc)
            return self._popular(model, request, FallbackReason.FEATURE_STORE_ERROR, None)
        finally:
            metrics.FEATURE_FETCH_SECONDS.observe(self._clock() - started)
        if user is None or not user.is_known:
            return self._popular(model, request, FallbackReason.UNKNOWN_USER, user)
        history = model.item_indices(user.history_items)
        known_tokens = [t for t in user.attribute_tokens if t in model.token_index]
        if history.size == 0 and not known_tokens:
            return self._popular(model, request, FallbackReason.NO_USABLE_FEATURES, user)
        started = self._clock()
        try:
            scores = model.score(history, known_tokens)
        except Exception as exc:  # onnxruntime raises several unrelated types
            log.error("model scoring failed, serving popular: %s", exc)
            return self._popular(model, request, FallbackReason.MODEL_ERROR, user)
        finally:
            metrics.INFERENCE_SECONDS.observe(self._clock() - started)
        excluded = np.concatenate((history, model.item_indices(request.exclude)))
        idx, top_scores = top_k(scores, request.k, excluded)
        items = tuple(
            ScoredItem(model.item_ids[i], round(float(s), 6))
            for i, s in zip(idx.tolist(), top_scores.tolist(), strict=True)
        )
        source = Source.PERSONALIZED if history.size else Source.COLD_START
        return Recommendation(request.user_id, items, source, model.version)

    def _popular(
        self,
        model: LoadedModel,
        request: RecommendRequest,
        reason: FallbackReason,
        user: UserFeatures | None,
    ) -> Recommendation:
        metrics.FALLBACKS.labels(reason.value).inc()
        exclude = set(request.exclude)
        if user is not None:
            exclude.update(user.history_items)
        items = popular_items(model.popular, request.k, exclude)
        return Recommendation(
            request.user_id, items, Source.POPULAR, model.version, fallback_reason=reason
        )


def _variant_key(model_version: str, request: RecommendRequest) -> str:
    if not request.exclude:
        return f"{model_version}|{request.k}"
    digest = hashlib.blake2b("\x1f".join(sorted(request.exclude)).encode(), digest_size=8)
    return f"{model_version}|{request.k}|{digest.hexdigest()}"


def _to_cache(answer: Recommendation) -> bytes:
    return orjson.dumps(
        {
            "items": [(i.item_id, i.score) for i in answer.items],
            "source": answer.source.value,
            "model_version": answer.model_version,
        }
    )


def _from_cache(user_id: str, payload: bytes, tier: str | None) -> Recommendation:
    data = orjson.loads(payload)
    items = tuple(ScoredItem(item_id, score) for item_id, score in data["items"])
    return Recommendation(
        user_id, items, Source(data["source"]), data["model_version"], cache_tier=tier
    )


def _publish_model_info(model: LoadedModel) -> None:
    metrics.MODEL_INFO.labels(model.version, model.manifest.model_type).set(1)
