"""The cache tier the precompute job's engine writes through: every lookup misses (the job
computes afresh) and every list goes to the shared Redis tier with the precompute's max age.

Entries land in the user's ordinary hash, so everything that drops a user's lists (a new
event, feedback, an erasure: ``RedisCache.invalidate_users``) drops the precomputed ones too.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.serving.cache.redis_tier import RedisCache


class PrecomputeTier:
    """Write-only view of ``shared`` for one precompute run; owns ``shared``."""

    tier = "redis"

    def __init__(self, shared: RedisCache, max_age_seconds: int) -> None:
        self._shared = shared
        self._max_age_seconds = max_age_seconds
        self._started: set[str] = set()  # users whose hash this run has replaced
        self.stored = 0  # lists written
        self.failed = 0  # lists Redis did not take

    async def get(self, user_id: str, variant: str) -> bytes | None:
        """Always a miss: the job exists to compute afresh."""
        return None

    async def set(self, user_id: str, variant: str, value: bytes) -> None:
        fresh = user_id not in self._started
        stored = await self._shared.store_precomputed(
            user_id, variant, value, max_age_seconds=self._max_age_seconds, fresh=fresh
        )
        if stored:
            self._started.add(user_id)
            self.stored += 1
        else:
            self.failed += 1

    async def invalidate_user(self, user_id: str) -> None:
        await self._shared.invalidate_user(user_id)

    async def erase_user(self, user_id: str) -> None:
        await self._shared.erase_user(user_id)

    async def invalidate_users(self, user_ids: Sequence[str]) -> None:
        await self._shared.invalidate_users(user_ids)

    async def ping(self) -> None:
        await self._shared.ping()

    async def close(self) -> None:
        await self._shared.close()
