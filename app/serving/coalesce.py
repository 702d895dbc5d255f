"""One store read for every request that asks during the same event-loop pass.

Under load a worker's event loop wakes with several requests ready at once (uvicorn starts a
task per request; they run one after another in the same pass). Each used to make its own
consent and online-feature read: a SQLite read transaction (an ``fstat`` and a lock/unlock
pair) or a Redis round trip, plus the fixed Python cost of a read, per user.
``ReadCoalescer.get`` parks the request on a future instead; the first request of a pass
schedules one batched read (``fetch``) that runs once every request already queued in that
pass has joined, and answers them all. A lone request pays one extra loop pass (a few
microseconds). The answers are as fresh as before: the requests of one batch were in flight
together, so no order between them and a concurrent write was promised.

The batched read runs in a task of its own, so a request cancelled while it waits (its client
went away) never leaves the others of its batch waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[Sequence[K]], Awaitable[Mapping[K, V]]]


class ReadCoalescer(Generic[K, V]):
    """Answers ``get(key)`` from one ``fetch(keys)`` per event-loop pass.

    ``fetch`` receives the distinct keys of a batch in arrival order and returns a value for
    each; an exception it raises is raised by every ``get`` of the batch. ``on_batch`` (if
    given) is called with each batch's size and duration in seconds, for metrics.
    """

    def __init__(
        self,
        fetch: Fetch[K, V],
        on_batch: Callable[[int, float], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._fetch = fetch
        self._on_batch = on_batch
        self._clock = clock
        self._pending: list[tuple[K, asyncio.Future[V]]] | None = None
        self._running: set[asyncio.Task[None]] = set()  # strong references until done

    async def get(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        if self._pending is None:
            self._pending = []
            # call_soon queues behind the tasks already ready in this pass: they join first.
            loop.call_soon(self._flush)
        self._pending.append((key, future))
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending or [], None
        task = asyncio.ensure_future(self._answer(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _answer(self, batch: list[tuple[K, asyncio.Future[V]]]) -> None:
        keys = list(dict.fromkeys(key for key, _ in batch))
        started = self._clock()
        try:
            found = await self._fetch(keys)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (the loop is closing): so are the waiters
            for _, future in batch:
                future.cancel()
            raise
        finally:
            if self._on_batch is not None:
                self._on_batch(len(keys), self._clock() - started)
        for key, future in batch:
            if not future.done():  # a waiter cancelled meanwhile is simply skipped
                future.set_result(found[key])
