"""The in-process cache tier: a per-worker TTL + LRU map of user -> {variant: value}."""

from __future__ import annotations

from collections.abc import Sequence

from cachetools import TTLCache

# Variants kept per user; distinct exclusion lists could otherwise grow one user's entry
# without bound inside the TTL. The oldest variant is dropped first.
MAX_VARIANTS_PER_USER = 16


class LocalCache:
    """In-process tier that never fails. ``max_entries`` bounds the number of *users* held
    (least recently used evicted first); a user's variants all expire ``ttl_seconds`` after the
    first of them was stored. ``max_entries == 0`` stores nothing.

    Meant for one asyncio event loop (no locking).
    """

    tier = "local"

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds}")
        self._enabled = max_entries > 0  # TTLCache(maxsize=0) raises on every insert
        self._users: TTLCache[str, dict[str, bytes]] = TTLCache(
            maxsize=max(max_entries, 1), ttl=ttl_seconds
        )

    async def get(self, user_id: str, variant: str) -> bytes | None:
        """The stored value, or None when absent or expired."""
        variants = self._users.get(user_id)
        return None if variants is None else variants.get(variant)

    async def set(self, user_id: str, variant: str, value: bytes) -> None:
        """Store ``value``; the user's expiry time is not pushed back by this write."""
        if not self._enabled:
            return
        variants = self._users.get(user_id)
        if variants is None:
            self._users[user_id] = {variant: value}
            return
        # Mutating in place keeps the TTL clock of the user's first write.
        variants.pop(variant, None)
        if len(variants) >= MAX_VARIANTS_PER_USER:
            del variants[next(iter(variants))]
        variants[variant] = value

    async def invalidate_user(self, user_id: str) -> None:
        """Drop every variant of ``user_id``."""
        self._users.pop(user_id, None)

    async def invalidate_users(self, user_ids: Sequence[str]) -> None:
        """Drop every variant of each of ``user_ids``."""
        for user_id in user_ids:
            self._users.pop(user_id, None)

    async def erase_user(self, user_id: str) -> None:
        """``invalidate_user``: the tier keeps nothing else."""
        self._users.pop(user_id, None)

    async def ping(self) -> None:
        """Always answers: the tier lives in this process."""

    def clear(self) -> None:
        """Drop every user."""
        self._users.clear()

    async def close(self) -> None:
        """Drop everything held."""
        self.clear()
