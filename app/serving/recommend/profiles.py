"""What the request path reads about a user before ranking: consent, then online features.

Requests a worker's event loop has ready in the same pass read together
(``coalesce.ReadCoalescer``): one consent read and one feature read for all their users. A
request that consults no cache needs both, so they are one coalesced step; with a cache in
front, consent is checked alone first (a cache hit must not pay for a feature read) and the
features of a cache miss are read, coalesced, afterwards. Failures become the fallback reason
of every user they concern, logged once per read rather than once per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from app.features.client import FeatureClient, FeatureStoreError
from app.features.schema import SCORING_FEATURES, UserFeatures
from app.observability import metrics
from app.privacy import ConsentService, ConsentUnavailable, Purpose
from app.serving.recommend.coalesce import ReadCoalescer
from app.serving.types import FallbackReason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Profile:
    """A user's scoring features (None: unknown to the store), or why they cannot be used."""

    user: UserFeatures | None
    refused: FallbackReason | None = None  # no consent, consent or feature store failing


class ProfileReader:
    """Consent and scoring features by user id, read in batches across concurrent requests."""

    def __init__(
        self,
        features: FeatureClient,
        consent: ConsentService | None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._features = features
        self._consent = consent  # None: every user may be personalised
        self._clock = clock
        self._consented_reads = ReadCoalescer(self._read_consented)
        self._feature_reads = ReadCoalescer(self._read_features)

    async def consented(self, user_id: str) -> Profile:
        """Consent, then (if given) the features: one coalesced read."""
        return await self._consented_reads.get(user_id)

    async def refusal(self, user_id: str) -> FallbackReason | None:
        """Why ``user_id`` must not be personalised, or None when they may be (not
        coalesced: it stands before a cache, whose hits should not wait a loop pass)."""
        return (await self._refusals([user_id]))[user_id]

    async def features(self, user_id: str) -> Profile:
        """The features alone, for a user whose consent was checked: one coalesced read."""
        return await self._feature_reads.get(user_id)

    async def _read_consented(self, user_ids: Sequence[str]) -> Mapping[str, Profile]:
        refusals = await self._refusals(user_ids)
        profiles = self._read([user for user in user_ids if refusals[user] is None])
        return {
            user: profiles[user] if reason is None else Profile(None, reason)
            for user, reason in refusals.items()
        }

    async def _read_features(self, user_ids: Sequence[str]) -> Mapping[str, Profile]:
        return self._read(user_ids)

    async def _refusals(self, user_ids: Sequence[str]) -> dict[str, FallbackReason | None]:
        if self._consent is None:
            return dict.fromkeys(user_ids)
        try:
            allowed = await self._consent.allows_many(user_ids, Purpose.PERSONALIZATION)
        except ConsentUnavailable as exc:
            log.warning("consent store failed, serving non-personalised: %s", exc)
            return dict.fromkeys(user_ids, FallbackReason.CONSENT_UNAVAILABLE)
        return {user: None if allowed[user] else FallbackReason.NO_CONSENT for user in user_ids}

    def _read(self, user_ids: Sequence[str]) -> dict[str, Profile]:
        if not user_ids:
            return {}
        metrics.READ_BATCH_USERS.observe(len(user_ids))
        started = self._clock()
        try:
            users = self._features.get_users(user_ids, SCORING_FEATURES)
        except FeatureStoreError as exc:
            log.warning("feature store failed, serving popular: %s", exc)
            return dict.fromkeys(user_ids, Profile(None, FallbackReason.FEATURE_STORE_ERROR))
        finally:
            metrics.FEATURE_FETCH_SECONDS.observe(self._clock() - started)
        return {user: Profile(users.get(user)) for user in user_ids}  # absent: unknown
