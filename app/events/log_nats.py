"""The event log on a NATS JetStream stream: a real broker shared by every API worker and consumer.

Storage: one file-backed stream holding each event's bytes under one subject; ``position`` is
the stream sequence. ``append`` publishes every event with ``Nats-Msg-Id`` set, so JetStream's
duplicate window (``dedupe_window_seconds``) drops repeats server-side, and awaits each
publish ack: the server has written the message to its store before acking, so an acknowledged
event survives ``kill -9`` of the API and of ``nats-server`` (not a power cut: nats-server 2.9
fsyncs its store periodically, ``sync_interval`` in 2.10+ makes that ``always``).

Consumer groups are JetStream's own: one durable pull consumer per group, named after it, with
explicit acks and ``ack_wait``. The server hands each message to one puller, keeps it pending
until acked and redelivers it (before new messages) once ``ack_wait`` has passed, and its
consumer info counts what is left (``num_pending``, ``num_ack_pending``) for ``lag``. An ack
goes to the delivery's reply subject, so ``ack`` takes positions this object read.

Erasure: JetStream cannot forget a message id inside its duplicate window, so ``delete_user``
bumps the user's erasure epoch (a key-value bucket, keyed by a hash of the user id) and later
ids of that user are published as ``<epoch>:<event_id>``: an erased id is stored anew. Deleting
a message also drops it from every consumer's pending set (the server does that itself).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue

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
# Status replies that end a pull request: 404 nothing to deliver now, 408 request expired.
PULL_DONE = ("404", "408")
GROUP_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
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
        ack_wait_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.url = url
        self.stream = stream
        self.subject = f"{stream.lower()}.events"
        self._dedupe_window_seconds = dedupe_window_seconds
        self._ack_wait_seconds = ack_wait_seconds
        self._timeout = timeout_seconds
        self._connect_lock = asyncio.Lock()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._erasures: KeyValue | None = None
        self._consumers: set[str] = set()  # durable consumers made (or updated) by this object
        self._unacked: dict[str, dict[str, Msg]] = {}  # group -> position -> its delivery

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
        """Pull from the group's durable consumer: what is there now; when nothing is, one
        message waited for up to ``block_ms``, then whatever followed it. JetStream does not
        tell the pullers of one durable apart, so ``consumer`` names nobody here."""
        async with self._unavailable("read"):
            durable = await self._consumer(consumer_group)
            messages = await self._pull(durable, {"batch": count, "no_wait": True})
            if not messages and block_ms > 0:
                waited = {"batch": 1, "expires": block_ms * 1_000_000}
                messages = await self._pull(durable, waited, block_ms / 1000)
                if messages and count > 1:
                    messages += await self._pull(durable, {"batch": count - 1, "no_wait": True})
        held = self._unacked.setdefault(consumer_group, {})
        logged = []
        for message in messages:
            position = str(message.metadata.sequence.stream)
            held[position] = message
            logged.append(LoggedEvent(position, Event.from_bytes(message.data, position)))
        return logged

    async def ack(self, consumer_group: str, positions: Sequence[str]) -> None:
        """Ack the deliveries this object read at ``positions`` and wait for the server to
        record them; other positions are ignored (theirs come back after ``ack_wait``)."""
        held = self._unacked.get(consumer_group, {})
        deliveries = [held.pop(p) for p in positions if p in held]
        if not deliveries:
            return  # a failed ack below is not retried: those events come back after ack_wait
        *rest, last = deliveries
        async with self._unavailable("ack"):
            # One connection's messages reach the consumer in order and it handles its acks in
            # that order, so the server's answer to the last ack means all of them are recorded.
            for message in rest:
                await message.ack()
            await last.ack_sync(timeout=self._timeout)

    async def lag(self, consumer_group: str) -> int:
        """Undelivered plus unacked messages, as the group's consumer info counts them."""
        async with self._unavailable("lag") as js:
            try:
                info = await js.consumer_info(self.stream, _durable_name(consumer_group))
            except nats.js.errors.NotFoundError:
                return int((await js.stream_info(self.stream)).state.messages)
            return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def iter_all(self, after: str | None = None, limit: int = 10_000) -> list[LoggedEvent]:
        """Stored events after ``after``, oldest first."""
        async with self._unavailable("iter_all"):
            return await self._fetch_after(0 if after is None else int(after), limit)

    async def delete_user(self, user_id: str) -> int:
        """Bump the user's erasure epoch and delete their messages (a scan of the stream; the
        server overwrites a deleted message's bytes in its store, JetStream's default erase,
        and drops it from its consumers' pending sets)."""
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
        for held in self._unacked.values():
            for position in mine:
                held.pop(position, None)
        return len(mine)

    async def ping(self) -> None:
        """Connect if need be and ask the server for the stream's state."""
        async with self._unavailable("ping") as js:
            await js.stream_info(self.stream)

    async def close(self) -> None:
        """Close the connection; a later call would connect again. Unacked deliveries come
        back to the group after ``ack_wait``."""
        async with self._connect_lock:
            if self._nc is not None:
                await self._nc.close()
            self._nc = self._js = self._erasures = None
            self._consumers.clear()
            self._unacked.clear()

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
        """Connect and create the stream and the erasure bucket once per instance
        (idempotent)."""
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

    async def _consumer(self, group: str) -> str:
        """The group's durable consumer, created from the start of the stream on first use;
        for an existing one the server takes this ``ack_wait`` (an editable setting)."""
        durable = _durable_name(group)
        if durable not in self._consumers:
            js = await self._connected()
            config = ConsumerConfig(
                durable_name=durable,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self._ack_wait_seconds,
                max_ack_pending=-1,  # the default (1000) would stall a batch read of 10,000
                filter_subject=self.subject,
            )
            await js.add_consumer(self.stream, config)
            self._consumers.add(durable)
        return durable

    async def _pull(
        self, durable: str, request: dict[str, int | bool], wait_seconds: float = 0.0
    ) -> list[Msg]:
        """One pull request on a fresh inbox: the messages it brings, until the batch is full
        or the server says it is done. nats-py's ``fetch`` waits out its whole timeout when a
        batch is not full; this returns as soon as the server has nothing more."""
        assert self._nc is not None
        inbox = self._nc.new_inbox()
        subscription = await self._nc.subscribe(inbox)
        try:
            await self._nc.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{durable}",
                orjson.dumps(request),
                reply=inbox,
            )
            deadline = time.monotonic() + wait_seconds + self._timeout
            messages: list[Msg] = []
            while len(messages) < int(request["batch"]):
                message = await subscription.next_msg(max(deadline - time.monotonic(), 0.001))
                status = (message.headers or {}).get("Status")
                if status is None:
                    messages.append(message)
                elif status in PULL_DONE:
                    break
                else:  # e.g. 503: the consumer is gone (its stream was recreated)
                    self._consumers.discard(durable)
                    detail = (message.headers or {}).get("Description", "")
                    raise EventLogUnavailable(f"nats event log read: {status} {detail}")
            return messages
        finally:
            await subscription.unsubscribe()

    async def _epoch(self, user_id: str) -> int:
        assert self._erasures is not None
        try:
            return int((await self._erasures.get(_user_key(user_id))).value or b"0")
        except nats.js.errors.KeyNotFoundError:
            return 0

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


def _durable_name(group: str) -> str:
    """The group's consumer name: JetStream refuses dots, wildcards and spaces in one."""
    if GROUP_NAME.fullmatch(group) is None:
        raise ValueError(
            f"consumer group {group!r}: use 1-64 letters, digits, '-' or '_' (a JetStream "
            "consumer name)"
        )
    return group
