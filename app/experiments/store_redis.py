"""The shared ``ExposureStore`` on Redis, used whenever ``RECSERVE_REDIS_URL`` is set.

Keys (``prefix`` from ``RECSERVE_ATTRIBUTION__REDIS_KEY_PREFIX``):

* ``<prefix>:rec:<recommendation id>``: a hash, field ``e`` the exposure as JSON and one field
  per ``(item, counter)`` already counted; it expires ``ttl`` after it was saved.
* ``<prefix>:counts:<experiment>``: a hash of ``<variant>\\x1f<counter>`` -> count, kept forever;
  events not attributed count under ``<variant>\\x1funattributed:<reason>``.
* ``<prefix>:users:<experiment>:<variant>``: a HyperLogLog of user pseudonyms. Distinct users
  are approximate (0.81 % standard error, exact in practice for small counts) so memory stays
  12 KB per variant however many users an experiment reaches.

Erasing a user (``delete_user``, an admin path) SCANs the ``rec`` hashes and deletes those of
the user. The HyperLogLog cannot drop one member, so the erased user still counts among the
variant's distinct users; it holds only a few bits of each member's hash, from which no
pseudonym (let alone id) can be recovered. Counters stay: anonymous totals.

On a Redis Cluster the prefix is hash-tagged (``{<prefix>}:rec:<id>``, ...): each script
touches an exposure hash with its experiment's counters, so every key of the store lives on one
slot (one master, whose replica takes over on failover).

Each write is one Lua script, so "save unless known, then count" and "count unless counted"
are atomic across workers. Every call is bounded by the client's socket timeout and any Redis
failure is raised as ``ExposureStoreUnavailable``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from redis.exceptions import RedisError

from app.experiments.attribution import (
    Counter,
    Exposure,
    ExposureStoreUnavailable,
    Unattributed,
    VariantCounts,
)
from app.infra.redis_client import RedisClient, register_script, slot_tag
from app.infra.redis_scan import scan_pages

EXPOSURE_FIELD = "e"
_SEPARATOR = "\x1f"
_EXPOSURES = "exposures"
_UNATTRIBUTED = "unattributed:"

# KEYS: exposure hash, counts hash, users HLL. ARGV: exposure JSON, ttl ms, counts field, user.
_SAVE_SCRIPT = """
if redis.call('HSETNX', KEYS[1], 'e', ARGV[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('PFADD', KEYS[3], ARGV[4])
return 1
"""

# KEYS: exposure hash, counts hash. ARGV: counted-pair field, counts field.
_COUNT_ONCE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], ARGV[1], '1') == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
return 1
"""


class RedisExposureStore:
    """``ExposureStore`` shared by every worker through Redis. Takes ownership of ``client``."""

    backend = "redis"

    def __init__(self, client: RedisClient, *, prefix: str) -> None:
        self._client = client
        self.prefix = slot_tag(client, prefix)
        self._save = register_script(client, _SAVE_SCRIPT)
        self._count_once = register_script(client, _COUNT_ONCE_SCRIPT)

    async def save_exposure(self, exposure: Exposure, ttl: timedelta) -> None:
        """Store and count the exposure unless its id is known. The key lives ``ttl`` from now
        (``served_at`` is now in service; the window check itself uses ``served_at``)."""
        document = {
            "experiment_id": exposure.experiment_id,
            "variant": exposure.variant,
            "user_key": exposure.user_key,
            "positions": exposure.positions,
            "served_at": exposure.served_at.isoformat(),  # exact, unlike a float timestamp
        }
        keys = [
            self._rec_key(exposure.recommendation_id),
            self._counts_key(exposure.experiment_id),
            self._users_key(exposure.experiment_id, exposure.variant),
        ]
        args: list[bytes | str | int] = [
            orjson.dumps(document),
            max(1, int(ttl.total_seconds() * 1000)),
            _field(exposure.variant, _EXPOSURES),
            exposure.user_key,
        ]
        await self._call(self._save(keys=keys, args=args))

    async def find_exposure(self, recommendation_id: str) -> Exposure | None:
        """The stored exposure, or None when unknown or expired."""
        raw = await self._call(
            cast(
                Awaitable[bytes | None],
                self._client.hget(self._rec_key(recommendation_id), EXPOSURE_FIELD),
            )
        )
        return None if raw is None else _exposure(recommendation_id, raw)

    async def count_once(self, exposure: Exposure, item_id: str, counter: Counter) -> bool:
        """Count ``counter`` for the pair unless already counted or the exposure expired."""
        keys = [self._rec_key(exposure.recommendation_id), self._counts_key(exposure.experiment_id)]
        pair = f"c{_SEPARATOR}{item_id}{_SEPARATOR}{counter.value}"
        args = [pair, _field(exposure.variant, counter.value)]
        return bool(await self._call(self._count_once(keys=keys, args=args)))

    async def count_unattributed(self, exposure: Exposure, reason: Unattributed) -> None:
        """Count one event of the exposure's variant not attributed for ``reason``."""
        field = _field(exposure.variant, f"{_UNATTRIBUTED}{reason.value}")
        await self._call(
            cast(
                Awaitable[int],
                self._client.hincrby(self._counts_key(exposure.experiment_id), field, 1),
            )
        )

    async def variant_counts(self, experiment_id: str) -> dict[str, VariantCounts]:
        """Counters of each variant of ``experiment_id``; users from the HyperLogLogs."""
        raw: dict[bytes, bytes] = await self._call(
            cast(
                Awaitable[dict[bytes, bytes]], self._client.hgetall(self._counts_key(experiment_id))
            )
        )
        counts: dict[str, VariantCounts] = {}
        for field, value in raw.items():
            variant, counter = field.decode().rsplit(_SEPARATOR, 1)
            variant_counts = counts.setdefault(variant, VariantCounts())
            if counter.startswith(_UNATTRIBUTED):
                variant_counts.unattributed[counter.removeprefix(_UNATTRIBUTED)] = int(value)
            else:
                setattr(variant_counts, counter, int(value))
        for variant, variant_counts in counts.items():
            users = await self._call(self._client.pfcount(self._users_key(experiment_id, variant)))
            variant_counts.users = int(users)
        return counts

    async def exposures_of(self, user_key: str) -> list[Exposure]:
        """The user's unexpired exposures, oldest first (SCANs every exposure hash)."""

        async def read() -> list[Exposure]:
            return [exposure async for _, exposure in self._user_exposures(user_key)]

        found: list[Exposure] = await self._call(read())
        return sorted(found, key=lambda exposure: exposure.served_at)

    async def delete_user(self, user_key: str) -> int:
        """Delete the user's exposure hashes (SCANs them all); the HyperLogLogs still count them."""

        async def delete() -> int:
            keys = [key async for key, _ in self._user_exposures(user_key)]
            return int(await self._client.delete(*keys)) if keys else 0

        return int(await self._call(delete()))

    async def close(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()

    async def _call(self, pending: Awaitable[Any]) -> Any:
        try:
            return await pending
        except (RedisError, OSError) as exc:
            raise ExposureStoreUnavailable(f"redis exposure store: {exc}") from exc

    async def _user_exposures(self, user_key: str) -> AsyncIterator[tuple[str, Exposure]]:
        """``(key, exposure)`` of each stored exposure of the user, a SCAN page at a time
        (Redis errors propagate: callers wrap the whole walk in ``_call``)."""
        rec_prefix = self._rec_key("")
        async for keys in scan_pages(self._client, f"{rec_prefix}*"):
            async with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(key, EXPOSURE_FIELD)
                documents: list[bytes | None] = await pipe.execute()
            for key, raw in zip(keys, documents, strict=True):
                if raw is None:  # expired since the SCAN
                    continue
                exposure = _exposure(key.removeprefix(rec_prefix), raw)
                if exposure.user_key == user_key:
                    yield key, exposure

    def _rec_key(self, recommendation_id: str) -> str:
        return f"{self.prefix}:rec:{recommendation_id}"

    def _counts_key(self, experiment_id: str) -> str:
        return f"{self.prefix}:counts:{experiment_id}"

    def _users_key(self, experiment_id: str, variant: str) -> str:
        return f"{self.prefix}:users:{experiment_id}:{variant}"


def _field(variant: str, counter: str) -> str:
    return f"{variant}{_SEPARATOR}{counter}"


def _exposure(recommendation_id: str, raw: bytes) -> Exposure:
    document = orjson.loads(raw)
    return Exposure(
        recommendation_id=recommendation_id,
        experiment_id=document["experiment_id"],
        variant=document["variant"],
        user_key=document["user_key"],
        positions=document["positions"],
        served_at=datetime.fromisoformat(document["served_at"]),
    )
