"""The recommendation cache: one interface by role, and the tiered composition the engine uses.

Values are opaque bytes (the engine stores orjson-encoded answers), so every tier stores the
same thing. Entries are grouped by user: ``variant`` (model version, k, exclusions...) names one
answer for that user, and ``invalidate_user`` drops the whole group in one cheap operation.

Freshness rule shared by every tier: a user's group expires ``ttl`` after its *first* write, and
later writes of other variants do not extend it, so no answer is ever served more than ``ttl``
after it was computed.

Backends live in ``local_tier`` (in-process) and ``redis_tier`` (shared); both run the same
contract tests (``tests/serving/cache/test_cache_contract.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol


class CacheUnavailable(Exception):
    """A cache backend cannot be reached; raised only by ``ping`` (readiness checks)."""


class RecommendationCache(Protocol):
    """One cache tier. ``get``/``set``/``invalidate_user`` never raise for a backend failure."""

    tier: str  # metric and response label: "local" or "redis"

    async def get(self, user_id: str, variant: str) -> bytes | None:
        """The stored value, or None when absent, expired or the backend is failing."""
        ...

    async def set(self, user_id: str, variant: str, value: bytes) -> None:
        """Store ``value``; a failing backend drops the write (and reports it)."""
        ...

    async def invalidate_user(self, user_id: str) -> None:
        """Drop every variant stored for ``user_id``; other users are untouched."""
        ...

    async def invalidate_users(self, user_ids: Sequence[str]) -> None:
        """``invalidate_user`` for each of ``user_ids``, in one backend round trip."""
        ...

    async def erase_user(self, user_id: str) -> None:
        """``invalidate_user``, and forget any other record of ``user_id`` the tier keeps (an
        erasure request)."""
        ...

    async def ping(self) -> None:
        """Return when the backend answers; raise ``CacheUnavailable`` when it does not."""
        ...

    async def close(self) -> None:
        """Release the backend's resources; the tier must not be used afterwards."""
        ...


class CacheLookup(NamedTuple):
    """What ``TieredCache.get`` found: the value and the tier that held it, or ``(None, None)``."""

    value: bytes | None
    tier: str | None


_MISS = CacheLookup(None, None)

LookupObserver = Callable[[str, bool], None]  # (tier, hit) once per tier consulted


class TieredCache:
    """Tiers checked fastest first (local, then redis); a hit further down fills the tiers above.

    ``on_result(tier, hit)`` is called once for each tier a ``get`` consults, so a hit in the
    second tier reports a miss for the first and a hit for the second; tiers below the one that
    answered are not consulted and not reported.
    """

    def __init__(
        self, tiers: Sequence[RecommendationCache], on_result: LookupObserver | None = None
    ) -> None:
        if not tiers:
            raise ValueError("TieredCache needs at least one tier")
        self._tiers = tuple(tiers)
        self._on_result = on_result

    @property
    def tiers(self) -> tuple[RecommendationCache, ...]:
        return self._tiers

    async def get(self, user_id: str, variant: str) -> CacheLookup:
        """The first tier's value for (user, variant) as ``CacheLookup(value, tier)``, else
        ``CacheLookup(None, None)``. Unpacks as ``value, tier = await cache.get(...)``."""
        for depth, tier in enumerate(self._tiers):
            value = await tier.get(user_id, variant)
            if self._on_result is not None:
                self._on_result(tier.tier, value is not None)
            if value is not None:
                for upper in self._tiers[:depth]:
                    await upper.set(user_id, variant, value)
                return CacheLookup(value, tier.tier)
        return _MISS

    async def set(self, user_id: str, variant: str, value: bytes) -> None:
        """Write every tier. A remote tier's write is bounded by its socket timeout and skipped
        while its breaker is open, so awaiting it here is cheap and never raises."""
        for tier in self._tiers:
            await tier.set(user_id, variant, value)

    async def invalidate_user(self, user_id: str) -> None:
        """Drop every variant of ``user_id`` from every tier."""
        await self.invalidate_users((user_id,))

    async def invalidate_users(self, user_ids: Sequence[str]) -> None:
        """Drop every variant of each of ``user_ids`` from every tier, one call per tier."""
        for tier in self._tiers:
            await tier.invalidate_users(user_ids)

    async def erase_user(self, user_id: str) -> None:
        """Drop ``user_id`` from every tier and every record a tier keeps of them."""
        for tier in self._tiers:
            await tier.erase_user(user_id)

    async def close(self) -> None:
        """Close every tier."""
        for tier in self._tiers:
            await tier.close()
