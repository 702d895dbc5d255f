"""Consent as the request path and the privacy routes use it: by raw user id, with defaults.

``ConsentService`` pseudonymises the id, reads the store (through a per-worker cache when the
store is remote) and resolves purposes the user never chose to the configured defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from app.privacy.consent import (
    ConsentChange,
    ConsentPolicy,
    ConsentRecord,
    ConsentStore,
    Purpose,
)
from app.privacy.pseudonym import Pseudonymizer
from app.settings import Settings

CACHE_VARIANT = "consent"
NO_RECORD = b""  # cached answer for a user who never chose


class ConsentCache(Protocol):
    """A per-worker cache of stored records, dropped for a user when any worker changes them
    (``invalidation.SubscribedLocalCache`` fits)."""

    async def get(self, user_id: str, variant: str) -> bytes | None: ...

    async def set(self, user_id: str, variant: str, value: bytes) -> None: ...

    async def invalidate_user(self, user_id: str) -> None: ...

    async def close(self) -> None: ...


def policy_from_settings(settings: Settings) -> ConsentPolicy:
    return ConsentPolicy(
        {
            Purpose.PERSONALIZATION: settings.privacy.default_personalization,
            Purpose.TRACKING: settings.privacy.default_tracking,
        }
    )


class ConsentService:
    """Consent by raw user id. Methods raise ``ConsentUnavailable`` when the store fails."""

    def __init__(
        self,
        store: ConsentStore,
        policy: ConsentPolicy,
        pseudonyms: Pseudonymizer,
        *,
        cache: ConsentCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._policy = policy
        self._pseudonyms = pseudonyms
        self._cache = cache
        self._clock = clock

    @property
    def pseudonyms(self) -> Pseudonymizer:
        return self._pseudonyms

    @property
    def store(self) -> ConsentStore:
        return self._store

    async def allows(self, user_id: str, purpose: Purpose) -> bool:
        """Whether ``user_id`` consents to ``purpose`` (their choice, else the default)."""
        return self._grants(await self._record(self._pseudonyms.of(user_id)), purpose)

    def _grants(self, record: ConsentRecord | None, purpose: Purpose) -> bool:
        if record is None or purpose.value not in record.choices:
            return self._policy.defaults[purpose]
        return record.choices[purpose.value]

    async def allows_many(self, user_ids: Sequence[str], purpose: Purpose) -> dict[str, bool]:
        """``allows`` for several users, with one store read for those not cached."""
        keys = {user_id: self._pseudonyms.of(user_id) for user_id in dict.fromkeys(user_ids)}
        records = await self._records(list(keys.values()))
        return {user_id: self._grants(records[key], purpose) for user_id, key in keys.items()}

    async def current(self, user_id: str) -> tuple[dict[Purpose, bool], ConsentRecord | None]:
        """Every purpose resolved, and the stored record (None: only defaults apply)."""
        record = await self._record(self._pseudonyms.of(user_id))
        return self._policy.resolve(record), record

    async def update(
        self, user_id: str, changes: Mapping[Purpose, bool]
    ) -> tuple[dict[Purpose, bool], ConsentRecord]:
        """Record ``changes`` now; every worker sees them on its next read."""
        key = self._pseudonyms.of(user_id)
        record = await self._store.record(
            key, {purpose.value: granted for purpose, granted in changes.items()}, self._clock()
        )
        if self._cache is not None:  # the store's broadcast reaches this worker too, later
            await self._cache.invalidate_user(key)
        return self._policy.resolve(record), record

    async def history(self, user_id: str) -> list[ConsentChange]:
        return await self._store.history(self._pseudonyms.of(user_id))

    async def erase(self, user_id: str) -> bool:
        """Forget the user's choices and history (defaults apply again)."""
        key = self._pseudonyms.of(user_id)
        erased = await self._store.erase(key)
        if self._cache is not None:
            await self._cache.invalidate_user(key)
        return erased

    async def close(self) -> None:
        if self._cache is not None:
            await self._cache.close()
        await self._store.close()

    async def _record(self, key: str) -> ConsentRecord | None:
        return (await self._records([key]))[key]

    async def _records(self, keys: Sequence[str]) -> dict[str, ConsentRecord | None]:
        """Stored records by key: cached ones from the cache, the rest in one store read."""
        if self._cache is None:
            return await self._store.get_many(keys)
        records: dict[str, ConsentRecord | None] = {}
        missing = []
        for key in keys:
            cached = await self._cache.get(key, CACHE_VARIANT)
            if cached is None:
                missing.append(key)
            else:
                records[key] = None if cached == NO_RECORD else ConsentRecord.from_bytes(cached)
        if missing:
            for key, record in (await self._store.get_many(missing)).items():
                records[key] = record
                encoded = NO_RECORD if record is None else record.to_bytes()
                await self._cache.set(key, CACHE_VARIANT, encoded)
        return records
