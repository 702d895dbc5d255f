"""The request path: cache -> features -> scoring -> filters -> fallback.

``RecommendationEngine.recommend`` never raises for a dependency failure: a failing feature
store or model turns into the popularity fallback with a counted reason, and a failing cache
tier is skipped (the cache itself swallows and reports its errors).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import replace

import numpy as np
import orjson

from app.features.client import FeatureClient
from app.features.schema import UserFeatures
from app.feedback.service import UserFeedback
from app.observability import metrics
from app.privacy import ConsentService
from app.serving.cache.tiered import TieredCache
from app.serving.catalogue.rule_config import ItemFilter
from app.serving.catalogue.rules import ItemRules
from app.serving.model.ranking import LoadedModel
from app.serving.recommend.fallback import popular_items
from app.serving.recommend.history_index import history_indexer
from app.serving.recommend.profiles import Profile, ProfileReader
from app.serving.recommend.repeat_blend import blend_repeats
from app.serving.top_k import ranked_below, scored_items, top_k
from app.serving.types import (
    FallbackReason,
    Recommendation,
    RecommendRequest,
    ScoredItem,
    Source,
)

log = logging.getLogger(__name__)


class RecommendationEngine:
    """Holds the clients built at start-up and answers one request per call; concurrent
    calls share their consent and feature reads (``profiles.ProfileReader``)."""

    def __init__(
        self,
        model: LoadedModel,
        features: FeatureClient,
        cache: TieredCache | None,
        clock: Callable[[], float] = time.perf_counter,
        rules: ItemRules | None = None,
        consent: ConsentService | None = None,
        history_memo_bytes: int = 0,
        feedback: UserFeedback | None = None,
    ) -> None:
        self._model = model
        self._feedback = feedback  # None: no "not interested" entries to leave out
        self._consent = consent  # None: every user is personalised (no consent store)
        # The repeat model keys its rows by pseudonym, as the consent store does; without a
        # consent service repeat mode reads no row (the history alone ranks rebuys).
        self._pseudonyms = consent.pseudonyms if consent is not None else None
        self._features = features
        self._cache = cache
        self._rules = rules  # None: no business rules (hidden items included)
        self._clock = clock
        # Concurrent requests share their consent and feature reads.
        self._profiles = ProfileReader(features, consent, clock)
        self._history_indices = history_indexer(history_memo_bytes)
        _publish_model_info(model)

    @property
    def model(self) -> LoadedModel:
        return self._model

    def replace_model(self, model: LoadedModel) -> None:
        """Serve ``model`` from the next request on (hot reload; the caller checked it).
        Requests in flight finish on the model they started with; cache keys carry the
        version, so no answer of the old model is served as the new one's."""
        previous, self._model = self._model, model
        if self._rules is not None:
            self._rules.follow(model)
        metrics.MODEL_INFO.labels(previous.version, previous.manifest.model_type).set(0)
        _publish_model_info(model)

    @property
    def features(self) -> FeatureClient:
        return self._features

    @property
    def cache(self) -> TieredCache | None:
        return self._cache

    @property
    def rules(self) -> ItemRules | None:
        return self._rules

    @property
    def consent(self) -> ConsentService | None:
        return self._consent

    @property
    def feedback(self) -> UserFeedback | None:
        return self._feedback

    async def not_interested_items(self, user_id: str) -> frozenset[str]:
        """The items the user said they are not interested in, with every item of the
        categories they said so of; read afresh on each call (no list may show them)."""
        if self._feedback is None:
            return frozenset()
        said = await self._feedback.not_interested(user_id)
        if not said.categories or self._rules is None:
            return said.items
        return said.items | self._rules.items_in_categories(said.categories)

    async def recommend(self, request: RecommendRequest) -> Recommendation:
        model = self._model  # one version for the whole request, even if a reload lands
        variant = _variant_key(model.version, request)
        if self._rules is not None:
            await self._rules.refresh()
            # Lists made under other availability or filters never answer this request.
            variant += "|" + self._rules.cache_key(request.filters)
        if self._cache is None or not request.use_cache:
            # Consent, then features: without consent no profile is read.
            request = await self._without_unwanted(request)
            return self._answer(model, request, await self._profiles.consented(request.user_id))
        # Before the cache: no list personalised earlier is served without consent.
        refused = await self._profiles.refusal(request.user_id)
        if refused is not None:
            return self._popular(model, await self._without_unwanted(request), refused, None)
        payload, tier = await self._cache.get(request.user_id, variant)
        if payload is not None:
            # Feedback drops the user's cached lists, so a cached one already left out what
            # the user is not interested in: the store is read on a miss only.
            return _from_cache(request.user_id, payload, tier)
        request = await self._without_unwanted(request)
        answer = self._answer(model, request, await self._profiles.features(request.user_id))
        if answer.fallback_reason is None:
            await self._cache.set(request.user_id, variant, _to_cache(answer))
        return answer

    async def history(self, user_id: str) -> tuple[str, ...]:
        """The user's items, oldest -> newest; empty for an unknown user, a user who did not
        consent to personalisation, or a failing feature store (callers fall back)."""
        user = (await self._profiles.consented(user_id)).user
        return () if user is None else user.history_items

    async def segment(self, user_id: str) -> str | None:
        """The user's RFM segment, under the same conditions as ``history``."""
        user = (await self._profiles.consented(user_id)).user
        return None if user is None else user.segment

    async def _without_unwanted(self, request: RecommendRequest) -> RecommendRequest:
        """``request`` also excluding what the user is not interested in (its cache variant
        stays the one the caller looked up: feedback invalidates the user's lists)."""
        unwanted = await self.not_interested_items(request.user_id)
        if not unwanted:
            return request
        return replace(request, exclude=tuple(sorted({*request.exclude, *unwanted})))

    def _answer(
        self, model: LoadedModel, request: RecommendRequest, profile: Profile
    ) -> Recommendation:
        """Ranked items for ``profile``'s user, or the popularity fallback and why."""
        if profile.refused is not None:
            return self._popular(model, request, profile.refused, None)
        user = profile.user
        if user is None or not user.is_known:
            return self._popular(model, request, FallbackReason.UNKNOWN_USER, user)
        history = self._history_indices(model, user.history_items)
        known_tokens = [t for t in user.attribute_tokens if t in model.token_index]
        if history.size == 0 and not known_tokens:
            return self._popular(model, request, FallbackReason.NO_USABLE_FEATURES, user)
        started = self._clock()
        try:
            candidates, scores = model.score_candidates(history, known_tokens)
        except Exception as exc:  # onnxruntime raises several unrelated types
            log.error("model scoring failed, serving popular: %s", exc)
            return self._popular(model, request, FallbackReason.MODEL_ERROR, user)
        finally:
            metrics.INFERENCE_SECONDS.observe(self._clock() - started)
        excluded = (
            np.concatenate((history, model.item_indices(request.exclude)))
            if request.exclude
            else history
        )
        if self._rules is not None:  # on every scored item: exclusions never shorten the list
            scores = self._rules.adjust(model, scores, request.filters, candidates)
        items = scored_items(model, *top_k(scores, request.k, excluded, candidates))
        if candidates is not None and len(items) < request.k:
            # A two-stage model scored only its candidates; rules may have left too few.
            taken = {*request.exclude, *user.history_items, *(i.item_id for i in items)}
            fill = self.popular(request.k - len(items), taken, request.filters, model)
            items = (*items, *ranked_below(items, [f.item_id for f in fill]))
        source = Source.PERSONALIZED if history.size else Source.COLD_START
        metrics.labelled(metrics.RECOMMENDATIONS, source.value, user.segment or "none").inc()
        repeats: frozenset[str] = frozenset()
        if request.repeat and model.repeats is not None:
            rules, filters = self._rules, request.filters
            pseudonyms = self._pseudonyms
            items, repeats = blend_repeats(
                model,
                model.repeats,
                None if pseudonyms is None else pseudonyms.of(request.user_id),
                user.history_items,
                items,
                request.k,
                set(request.exclude),
                None if rules is None else lambda ids: rules.allowed(ids, filters),
            )
        return Recommendation(
            request.user_id, items, source, model.version, repeats=repeats, segment=user.segment
        )

    def popular(
        self,
        k: int,
        exclude: Collection[str],
        filters: ItemFilter | None = None,
        model: LoadedModel | None = None,
    ) -> tuple[ScoredItem, ...]:
        """The best ``k`` popular items not in ``exclude`` that the business rules allow,
        boosts applied; ``model`` defaults to the served one."""
        model = model or self._model
        if self._rules is None:
            return popular_items(model.popular, k, exclude)
        return self._rules.top_popular(model, k, exclude, filters)

    def _popular(
        self,
        model: LoadedModel,
        request: RecommendRequest,
        reason: FallbackReason,
        user: UserFeatures | None,
    ) -> Recommendation:
        metrics.FALLBACKS.labels(reason.value).inc()
        segment = user.segment if user is not None else None
        metrics.RECOMMENDATIONS.labels(Source.POPULAR.value, segment or "none").inc()
        exclude = set(request.exclude)
        if user is not None:
            exclude.update(user.history_items)
        items = self.popular(request.k, exclude, request.filters, model)
        return Recommendation(
            request.user_id,
            items,
            Source.POPULAR,
            model.version,
            fallback_reason=reason,
            segment=segment,
        )


def _variant_key(model_version: str, request: RecommendRequest) -> str:
    scope = f"{request.cache_scope}|" if request.cache_scope else ""
    if request.repeat:  # repeat mode answers another list than "exclude seen"
        scope += "repeat|"
    if not request.exclude:
        return f"{scope}{model_version}|{request.k}"
    digest = hashlib.blake2b("\x1f".join(sorted(request.exclude)).encode(), digest_size=8)
    return f"{scope}{model_version}|{request.k}|{digest.hexdigest()}"


def _to_cache(answer: Recommendation) -> bytes:
    return orjson.dumps(
        {
            "items": [(i.item_id, i.score) for i in answer.items],
            "source": answer.source.value,
            "model_version": answer.model_version,
            "repeats": sorted(answer.repeats),
            "segment": answer.segment,
        }
    )


def _from_cache(user_id: str, payload: bytes, tier: str | None) -> Recommendation:
    data = orjson.loads(payload)
    items = tuple(ScoredItem(item_id, score) for item_id, score in data["items"])
    return Recommendation(
        user_id,
        items,
        Source(data["source"]),
        data["model_version"],
        cache_tier=tier,
        repeats=frozenset(data.get("repeats", ())),
        segment=data.get("segment"),
    )


def _publish_model_info(model: LoadedModel) -> None:
    metrics.MODEL_INFO.labels(model.version, model.manifest.model_type).set(1)
    metrics.MODEL_TRAINED_TIMESTAMP.set(model.manifest.trained_at.timestamp())
