"""``DELETE /users/{id}`` and ``GET /users/{id}/export``: every store that holds a user.

What holds a user, and how erasure reaches it:

* erasure list (``tombstones``): the pseudonym is added first, so a build running meanwhile or
  any later one drops the user from its source (``offline.drop_erased_from_ingested``);
* event log (SQLite or Redis Stream): ``EventLog.delete_user`` removes the events and their
  dedupe ids;
* Feast online store (SQLite or Redis): every user feature view's row (``OnlineUserEraser``);
* batch tables under the home (ingested data, offline feature tables, the log's Parquet parts):
  rewritten without the user's rows;
* consent store: choices and history deleted (the defaults apply again);
* experiment exposure store (SQLite or Redis, keyed by pseudonym): the user's exposures
  deleted (``ExposureRecords.erase_user``); the variants' counters stay, anonymous totals;
* webhook outbox (SQLite or Redis): waiting and dead-lettered deliveries about the user (found
  by the pseudonym stamped on them at enqueue; their bodies hold the raw id) deleted;
* recommendation cache: the user's lists dropped from every tier and every worker, last, so no
  list computed from the deleted features survives (on a Redis Cluster the invalidation stream,
  which names recent users, is emptied too);
* Redis' files: on every Redis the service uses (``redis_url`` and each role's own URL; every
  node of a Redis Cluster, replicas included), an AOF rewrite and a snapshot are started in the
  background (``rewrite_persistence``), so the RDB and AOF stop holding what was deleted from
  memory.

Each step is idempotent, so an erasure that failed half-way (``ErasureFailed``, answered 503)
is completed by repeating it.

The exposure records, the webhook outbox and the recommendation cache belong to packages that
themselves read consent and pseudonyms; this module names only what it needs of them
(``ExposureRecords``, ``PendingDeliveries``, ``CachedLists``) and the composition root
(``app/bootstrap.py``) hands the real ones in, so privacy imports none of those packages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from redis.asyncio import Redis, RedisCluster

from app.events.log import EventLog
from app.events.redis_compaction import rewrite_persistence
from app.events.types import EventLogUnavailable
from app.experiments.attribution import Exposure
from app.features.client import FeatureClient, FeatureStoreError
from app.features.erase import OnlineUserEraser
from app.infra.redis_client import is_cluster_url, node_clients, redis_client
from app.privacy.consent import ConsentUnavailable
from app.privacy.offline import erase_from_tables, rows_of_user
from app.privacy.service import ConsentService
from app.privacy.tombstones import Tombstones

EXPORT_PAGE = 10_000
PERSISTENCE_TIMEOUT_SECONDS = 5.0


class ExposureRecords(Protocol):
    """The experiments' exposures of a user, by raw id (the holder pseudonymises)."""

    async def exposures_of(self, user_id: str) -> list[Exposure]: ...

    async def erase_user(self, user_id: str) -> int: ...


class PendingDeliveries(Protocol):
    """Webhook deliveries waiting or dead-lettered, found by the user's pseudonym."""

    async def delete_user(self, user_key: str) -> int: ...


class CachedLists(Protocol):
    """Recommendation lists computed for a user, in every cache tier and worker."""

    async def erase_user(self, user_id: str) -> None: ...


class ErasureFailed(Exception):
    """A store could not be reached; the steps before it are done, repeat the erasure."""


@dataclass(frozen=True)
class ErasureReport:
    erased_at: float
    events_deleted: int
    online_rows_deleted: int
    offline_rows_deleted: int
    consent_deleted: bool
    exposures_deleted: int
    webhook_deliveries_deleted: int


@dataclass(frozen=True)
class UserExport:
    consent: dict[str, bool]
    consent_updated_at: float | None
    consent_history: list[dict[str, Any]]
    profile: dict[str, Any] | None
    events: list[dict[str, Any]]
    offline: dict[str, list[dict[str, Any]]]
    exposures: list[dict[str, Any]]  # experiment_id, variant, served_at (Unix seconds)
    erased_at: float | None


class UserDataService:
    """Erasure and export over the stores built at start-up (shared with the engine)."""

    def __init__(
        self,
        consent: ConsentService,
        features: FeatureClient,
        eraser: OnlineUserEraser,
        event_log: EventLog,
        cache: CachedLists | None,
        erasure_list: Tombstones,
        batch_dirs: Sequence[Path],
        experiments: ExposureRecords,
        outbox: PendingDeliveries,
        unreachable: tuple[type[Exception], ...],
        clock: Callable[[], float] = time.time,
        redis_urls: Sequence[str] = (),
    ) -> None:
        """``unreachable``: the errors by which ``experiments`` and ``outbox`` say their store
        cannot be reached right now (an erasure then fails, to be repeated). ``redis_urls``:
        the Redis instances whose files are rewritten after an erasure."""
        self._consent = consent
        self._features = features
        self._eraser = eraser
        self._log = event_log
        self._cache = cache
        self._erasure_list = erasure_list
        self._batch_dirs = tuple(batch_dirs)
        self._experiments = experiments
        self._outbox = outbox
        self._store_errors: tuple[type[Exception], ...] = (
            OSError,
            EventLogUnavailable,
            FeatureStoreError,
            ConsentUnavailable,
            *unreachable,
        )
        self._clock = clock
        self._redis_urls = tuple(redis_urls)
        self._persisting: set[asyncio.Task[bool]] = set()

    @property
    def consent(self) -> ConsentService:
        return self._consent

    async def erase(self, user_id: str) -> ErasureReport:
        """Remove ``user_id`` from every store (see the module docstring for the order)."""
        now = round(self._clock(), 3)  # as the erasure list keeps it
        pseudonym = self._consent.pseudonyms.of(user_id)
        try:
            await asyncio.to_thread(self._erasure_list.add, pseudonym, now)
            events = await self._log.delete_user(user_id)
            online = await asyncio.to_thread(self._eraser.delete_user, user_id)
            offline = await asyncio.to_thread(
                erase_from_tables, self._batch_dirs, {pseudonym}, self._consent.pseudonyms
            )
            consent = await self._consent.erase(user_id)
            exposures = await self._experiments.erase_user(user_id)
            deliveries = await self._outbox.delete_user(pseudonym)
        except self._store_errors as exc:
            raise ErasureFailed(f"{type(exc).__name__}: {exc}") from exc
        if self._cache is not None:
            await self._cache.erase_user(user_id)
        for url in self._redis_urls:
            task = asyncio.create_task(self._rewrite_redis_files(url))
            self._persisting.add(task)
            task.add_done_callback(self._persisting.discard)
        return ErasureReport(now, events, online, offline, consent, exposures, deliveries)

    async def export(self, user_id: str) -> UserExport:
        """Everything held about ``user_id``. Reads the whole event log (and, on Redis, every
        exposure key): an admin operation. Raises the unavailable store's error."""
        resolved, record = await self._consent.current(user_id)
        history = await self._consent.history(user_id)
        profile = await asyncio.to_thread(self._features.get_user, user_id)
        offline = await asyncio.to_thread(rows_of_user, self._batch_dirs, user_id)
        exposures = await self._experiments.exposures_of(user_id)
        pseudonym = self._consent.pseudonyms.of(user_id)
        erased_at = await asyncio.to_thread(self._erasure_list.erased_at, pseudonym)
        return UserExport(
            consent={purpose.value: granted for purpose, granted in resolved.items()},
            consent_updated_at=record.updated_at if record is not None else None,
            consent_history=[dataclasses.asdict(change) for change in history],
            profile=dataclasses.asdict(profile) if profile is not None else None,
            events=await self._events_of(user_id),
            offline=offline,
            exposures=[
                {
                    "experiment_id": exposure.experiment_id,
                    "variant": exposure.variant,
                    "served_at": exposure.served_at.timestamp(),
                }
                for exposure in exposures
            ],
            erased_at=erased_at,
        )

    def close(self) -> None:
        self._eraser.close()

    @staticmethod
    async def _rewrite_redis_files(url: str) -> bool:
        # A client of its own: the rewrite may outlive the request, and its commands may wait
        # longer than the request path's clients allow.
        if not is_cluster_url(url):
            async with Redis.from_url(url, socket_timeout=PERSISTENCE_TIMEOUT_SECONDS) as client:
                return await rewrite_persistence(client)
        # Every node of a cluster, replicas too, writes its own snapshot and AOF.
        cluster = redis_client(
            url,
            socket_timeout=PERSISTENCE_TIMEOUT_SECONDS,
            connect_timeout=PERSISTENCE_TIMEOUT_SECONDS,
        )
        async with cluster:
            if not isinstance(cluster, RedisCluster):
                raise TypeError(f"not a cluster client: {type(cluster).__name__}")
            await cluster.initialize()
            nodes = node_clients(cluster, socket_timeout=PERSISTENCE_TIMEOUT_SECONDS)
        try:
            done = await asyncio.gather(*(rewrite_persistence(node) for node in nodes))
        finally:
            for node in nodes:
                await node.aclose()
        return all(done)

    async def _events_of(self, user_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after: str | None = None
        while page := await self._log.iter_all(after, EXPORT_PAGE):
            after = page[-1].position
            found.extend(
                dataclasses.asdict(logged.event)
                for logged in page
                if logged.event.user_id == user_id
            )
        return found
