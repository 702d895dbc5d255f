"""The event log on a NATS JetStream stream: a real broker shared by every API worker and consumer.

Storage: one file-backed stream holding each event's bytes under one subject; ``position`` is
the stream sequence. ``append`` publishes every event with ``Nats-Msg-Id`` set, so JetStream's
duplicate window (``dedupe_window_seconds``) drops repeats server-side, and awaits each
publish ack: the server has written the message to its store before acking, so an acknowledged
event survives ``kill -9`` of the API and of ``nats-server`` (not a power cut: nats-server 2.9
fsyncs its store periodically, ``sync_interval`` in 2.10+ makes that ``always``).

Consumer groups: JetStream's own consumers redeliver unacked messages to any puller after
``ack_wait``, while the contract gives pending events back to their own consumer until
``claim_idle`` moves them. So each group's cursor and pending set live in a JetStream key-value
bucket (``groups_state``), updated with compare-and-set on the entry's revision; two processes
racing for the same events retry, and each event goes to one consumer.

Erasure: JetStream cannot forget a message id inside its duplicate window, so ``delete_user``
bumps the user's erasure epoch (a second bucket, keyed by a hash of the user id) and later ids
of that user are published as ``<epoch>:<event_id>``: an erased id is stored anew.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType, StreamConfig
from nats.js.kv import KeyValue

from app.events.log_nats_groups import GroupState, decode_state, encode_state
from app.events.types import (
    AppendResult,
    Event,
    EventLogOutcomeUnknown,
    EventLogUnavailable,
    LoggedEvent,
)

log = logging.getLogger(__name__)

FETCH_CHUNK = 256  # concurrent message gets per round
STREAM_EXISTS_WITH_OTHER_CONFIG = 10058  # JetStream API error code
CAS_ATTEMPTS = 50
_FAILURES = (nats.errors.Error, asyncio.TimeoutError, OSError)


class NatsEventLog:
    """Event log on JetStream stream ``stream``. Connects on first use; every request is bounded
    by ``timeout_seconds`` and any failure is raised as ``EventLogUnavailable``."""

    backend = "nats"

    def __init__(
        self,
        url: str,
        *,
        stream: str,
        dedupe_window_seconds: int,
        timeout_seconds: float,
        poll_interval_seconds: float = 0.01,
    ) -> None:
        self.url = url
        self.stream = stream
        self.subject = f"{stream.lower()}.events"
        self._dedupe_window_seconds = dedupe_window_seconds
        self._timeout = timeout_seconds
        self._poll_interval_seconds = poll_interval_seconds
        self._connect_lock = asyncio.Lock()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._groups: KeyValue | None = None
        self._erasures: KeyValue | None = None

    async def append(self, events: Sequence[Event]) -> AppendResult:
        """Publish the batch concurrently on one connection (so in order) with message ids that
        JetStream dedupes; one round trip for the users' erasure epochs first."""
        if not events:
            return AppendResult((), ())
        async with self._unavailable("append") as js:
            users = sorted({event.user_id for event in events})
            epochs = dict(zip(users, await asyncio.gather(*map(self._epoch, users)), strict=True))
            acks = await asyncio.gather(
                *(
                    js.publish(
                        self.subject,
                        event.to_bytes(),
                        headers={"Nats-Msg-Id": _message_id(event, epochs[event.user_id])},
                    )
                    for event in events
                )
            )
        outcomes = list(zip(events, acks, strict=True))
        return AppendResult(
            tuple(event.event_id for event, ack in outcomes if not ack.duplicate),
            tuple(event.event_id for event, ack in outcomes if ack.duplicate),
        )

    async def read(
        self, consumer_group: str, consumer: str, *, count: int, block_ms: int
    ) -> list[LoggedEvent]:
        """Own pending then new events; while there are none, polls until ``block_ms``."""
        deadline = time.monotonic() + block_ms / 1000
        async with self._unavailable("read"):
            delivered = await self._deliver(consumer_group, consumer, count)
            while not delivered and (remaining := deadline - time.monotonic()) > 0:
                await asyncio.sleep(min(self._poll_interval_seconds, remaining))
                delivered = await self._deliver(consumer_group, consumer, count)
        return delivered

    async def claim_idle(
        self, consumer_group: str, consumer: str, *, min_idle_ms: int, count: int
    ) -> list[LoggedEvent]:
        """Move the group's events pending for at least ``min_idle_ms`` to ``consumer``."""
        async with self._unavailable("claim_idle"):
            for _ in range(CAS_ATTEMPTS):
                state, revision = await self._state(consumer_group)
                claimed = state.idle(time.time() - min_idle_ms / 1000)[:count]
                if not claimed:
                    return []
                logged = await self._fetch(claimed)
                state.hand_over([e.position for e in logged], consumer, time.time())
                state.forget(set(claimed) - {e.position for e in logged})
                if await self._save(consumer_group, state, revision):
                    return logged
        raise EventLogUnavailable(f"nats event log claim_idle: {CAS_ATTEMPTS} write conflicts")

    async def ack(self, consumer_group: str, positions: Sequence[str]) -> None:
        """Drop the positions from the group's pending set; unknown ones are ignored."""
        if not positions:
            return
        async with self._unavailable("ack"):
            for _ in range(CAS_ATTEMPTS):
                state, revision = await self._state(consumer_group)
                if not state.forget(set(positions)) or await self._save(
                    consumer_group, state, revision
                ):
                    return
        raise EventLogUnavailable(f"nats event log ack: {CAS_ATTEMPTS} write conflicts")

    async def lag(self, consumer_group: str) -> int:
        """Pending plus stored events after the group's cursor (counted by the server)."""
        async with self._unavailable("lag") as js:
            state, _ = await self._state(consumer_group)
            if state.delivered_up_to == 0:
                return int((await js.stream_info(self.stream)).state.messages)
            # An ephemeral consumer starting after the cursor: the server counts what is
            # left, skipping deleted messages, without sending any of them.
            start = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=state.delivered_up_to + 1,
                inactive_threshold=5.0,
            )
            info = await js.add_consumer(self.stream, start)
            await js.delete_consumer(self.stream, info.name)
            return len(state.pending) + int(info.num_pending or 0)

    async def iter_all(self, after: str | None = None, limit: int = 10_000) -> list[LoggedEvent]:
        """Stored events after ``after``, oldest first."""
        async with self._unavailable("iter_all"):
            return await self._fetch_after(0 if after is None else int(after), limit)

    async def delete_user(self, user_id: str) -> int:
        """Bump the user's erasure epoch, delete their messages (a scan of the stream; the
        server overwrites a deleted message's bytes in its store, JetStream's default erase)
        and drop them from every group's pending set."""
        async with self._unavailable("delete_user") as js:
            assert self._erasures is not None
            key = _user_key(user_id)
            await self._erasures.put(key, str(await self._epoch(user_id) + 1).encode())
            mine: list[str] = []
            after = 0
            while page := await self._fetch_after(after, FETCH_CHUNK * 4):
                mine += [e.position for e in page if e.event.user_id == user_id]
                after = int(page[-1].position)
            await asyncio.gather(*(js.delete_msg(self.stream, int(p)) for p in mine))
            for group in await self._group_names():
                await self._forget_in_group(group, set(mine))
        return len(mine)

    async def ping(self) -> None:
        """Connect if need be and ask the server for the stream's state."""
        async with self._unavailable("ping") as js:
            await js.stream_info(self.stream)

    async def close(self) -> None:
        """Close the connection; a later call would connect again."""
        async with self._connect_lock:
            if self._nc is not None:
                await self._nc.close()
            self._nc = self._js = self._groups = self._erasures = None

    @asynccontextmanager
    async def _unavailable(self, operation: str) -> AsyncIterator[JetStreamContext]:
        try:
            yield await self._connected()
        except _FAILURES as exc:
            if operation == "append" and isinstance(
                exc, asyncio.TimeoutError | nats.errors.TimeoutError
            ):
                # Publishes already sent may be stored; their message ids make a retry safe.
                raise EventLogOutcomeUnknown(f"nats event log append: {exc!r}") from exc
            raise EventLogUnavailable(f"nats event log {operation}: {exc!r}") from exc

    async def _connected(self) -> JetStreamContext:
        """Connect and create the stream and buckets once per instance (idempotent)."""
        async with self._connect_lock:
            if self._js is not None:
                return self._js
            # Once connected the client reconnects in the background for ever; the first
            # connection would retry for ever too, so it gets the call's time bound.
            nc = await asyncio.wait_for(
                nats.connect(
                    self.url.split(","),
                    connect_timeout=self._timeout,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=_log_client_error,
                ),
                self._timeout,
            )
            try:
                js = nc.jetstream(timeout=self._timeout)
                config = StreamConfig(
                    name=self.stream,
                    subjects=[self.subject],
                    storage=StorageType.FILE,
                    duplicate_window=float(self._dedupe_window_seconds),
                )
                try:
                    await js.add_stream(config)
                except nats.js.errors.BadRequestError as exc:
                    if exc.err_code != STREAM_EXISTS_WITH_OTHER_CONFIG:
                        raise
                    await js.update_stream(config)  # e.g. a new dedupe window
                self._groups = await _bucket(
                    js, KeyValueConfig(bucket=f"{self.stream}_groups", storage=StorageType.FILE)
                )
                # An epoch is only needed while the erased ids are inside the duplicate window.
                self._erasures = await _bucket(
                    js,
                    KeyValueConfig(
                        bucket=f"{self.stream}_erasures",
                        storage=StorageType.FILE,
                        ttl=2.0 * self._dedupe_window_seconds,
                    ),
                )
            except BaseException:
                await nc.close()
                raise
            self._nc, self._js = nc, js
            return js

    async def _epoch(self, user_id: str) -> int:
        assert self._erasures is not None
        try:
            return int((await self._erasures.get(_user_key(user_id))).value or b"0")
        except nats.js.errors.KeyNotFoundError:
            return 0

    async def _deliver(self, group: str, consumer: str, count: int) -> list[LoggedEvent]:
        for _ in range(CAS_ATTEMPTS):
            state, revision = await self._state(group)
            own = await self._fetch(state.owned_by(consumer)[:count])
            fresh = await self._fetch_after(state.delivered_up_to, count - len(own))
            if not own and not fresh:
                return []
            state.forget(set(state.owned_by(consumer)[:count]) - {e.position for e in own})
            state.hand_over([e.position for e in [*own, *fresh]], consumer, time.time())
            if await self._save(group, state, revision):
                return own + fresh
        raise EventLogUnavailable(f"nats event log read: {CAS_ATTEMPTS} write conflicts")

    async def _forget_in_group(self, group: str, positions: set[str]) -> None:
        for _ in range(CAS_ATTEMPTS):
            state, revision = await self._state(group)
            if not state.forget(positions) or await self._save(group, state, revision):
                return
        raise EventLogUnavailable(f"nats event log delete_user: {CAS_ATTEMPTS} write conflicts")

    async def _state(self, group: str) -> tuple[GroupState, int | None]:
        """The group's state and its revision; an unknown group starts at the beginning."""
        assert self._groups is not None
        try:
            entry = await self._groups.get(_group_key(group))
        except nats.js.errors.KeyNotFoundError:
            return GroupState(), None
        return decode_state(entry.value or b"{}"), entry.revision

    async def _save(self, group: str, state: GroupState, revision: int | None) -> bool:
        """Compare-and-set; False when another process wrote the group first."""
        assert self._groups is not None
        try:
            if revision is None:
                await self._groups.create(_group_key(group), encode_state(state))
            else:
                await self._groups.update(_group_key(group), encode_state(state), last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        return True

    async def _group_names(self) -> list[str]:
        assert self._groups is not None
        try:
            keys = await self._groups.keys()
        except nats.js.errors.NoKeysError:
            return []
        return [bytes.fromhex(key).decode() for key in keys]

    async def _fetch(self, positions: Sequence[str]) -> list[LoggedEvent]:
        """The stored events at ``positions``, in order; deleted ones are left out."""
        js = await self._connected()
        found = await asyncio.gather(*(self._get(js, int(p)) for p in positions))
        return [logged for logged in found if logged is not None]

    async def _fetch_after(self, after: int, limit: int) -> list[LoggedEvent]:
        """Up to ``limit`` stored events with sequence above ``after``, oldest first."""
        if limit <= 0:
            return []
        js = await self._connected()
        last = (await js.stream_info(self.stream)).state.last_seq
        found: list[LoggedEvent] = []
        seq = after + 1
        while len(found) < limit and seq <= last:
            upto = min(last, seq + min(limit - len(found), FETCH_CHUNK) - 1)
            got = await asyncio.gather(*(self._get(js, s) for s in range(seq, upto + 1)))
            found += [logged for logged in got if logged is not None]
            seq = upto + 1
        return found[:limit]

    async def _get(self, js: JetStreamContext, seq: int) -> LoggedEvent | None:
        try:
            message = await js.get_msg(self.stream, seq)
        except nats.js.errors.NotFoundError:  # deleted by an erasure
            return None
        position = str(seq)
        return LoggedEvent(position, Event.from_bytes(message.data or b"", position))


async def _bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    """Create the bucket; when it exists with other settings (an erasure bucket made under
    another dedupe window), give its stream this TTL and bind to it."""
    try:
        return await js.create_key_value(config)
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code != STREAM_EXISTS_WITH_OTHER_CONFIG:
            raise
    assert config.bucket is not None
    existing = (await js.stream_info(f"KV_{config.bucket}")).config
    existing.max_age = config.ttl
    await js.update_stream(existing)
    return await js.key_value(config.bucket)


async def _log_client_error(exc: Exception) -> None:
    # One line per failed (re)connect; the default callback logs a traceback each time.
    log.warning("nats event log: %r", exc)


def _message_id(event: Event, epoch: int) -> str:
    return event.event_id if epoch == 0 else f"{epoch}:{event.event_id}"


def _user_key(user_id: str) -> str:
    # Hashed: a KV key is visible to anyone listing the bucket, a user id is personal data.
    return hashlib.sha256(user_id.encode()).hexdigest()


def _group_key(group: str) -> str:
    return group.encode().hex()  # any group name becomes a valid KV key
