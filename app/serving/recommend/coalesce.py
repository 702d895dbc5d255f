"""One store read for every request that asks during the same event-loop pass.

Under load a worker's event loop wakes with several requests ready at once (uvicorn starts a
task per request; they run one after another in the same pass). Read one by one, each would
make its own consent and online-feature read: a SQLite read transaction (an ``fstat`` and a
lock/unlock pair) or a Redis round trip, plus the fixed Python cost of a read, per user.
With ``ReadCoalescer.get`` the first request of a pass yields once, so that the requests
already queued behind it in that pass join its batch, then makes one batched read (``fetch``)
for all of them and carries on; the others resume one pass later with their answers. The
answers are as fresh as separate reads': the requests of one batch were in flight together,
so no order between them and a concurrent write was promised.

Waiting a pass costs a lone request ~50 µs of CPU (a loop iteration and its ``epoll_wait``),
which at a light load buys nothing. So after ``LONE_READS_BEFORE_SKIPPING`` reads in a row that
nobody joined, requests read at once, except every ``PROBE_EVERY``-th, which still waits to
see whether company has come back (the load rose); the first batch with company restores the
wait for everyone.

A first request cancelled while it waits or reads (its client went away, the server stops)
hands its batch to a task of its own, so the others are still answered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Batches nobody joined, in a row, after which requests stop waiting for company...
LONE_READS_BEFORE_SKIPPING = 8
# ... except one in this many, which waits anyway to notice a rising load.
PROBE_EVERY = 16

Fetch = Callable[[Sequence[K]], Awaitable[Mapping[K, V]]]
Waiter = tuple[K, "asyncio.Future[V]"]


class ReadCoalescer(Generic[K, V]):
    """Answers ``get(key)`` from one ``fetch(keys)`` per event-loop pass.

    ``fetch`` receives the distinct keys of a batch in arrival order and returns a value for
    each; an exception it raises is raised by every ``get`` of the batch.
    """

    def __init__(self, fetch: Fetch[K, V]) -> None:
        self._fetch = fetch
        self._joining: list[Waiter[K, V]] | None = None  # the batch gathering in this pass
        self._handed_off: set[asyncio.Task[None]] = set()  # strong references until done
        self._lone_reads = 0  # batches in a row that nobody joined

    async def get(self, key: K) -> V:
        if self._joining is not None:
            future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
            self._joining.append((key, future))
            return await future
        joined: list[Waiter[K, V]] = []
        if self._waits_for_company():
            self._joining = joined
            try:
                # Resumes after every task already queued in this pass has run (and joined).
                await asyncio.sleep(0)
            except BaseException:
                self._joining = None
                self._hand_off(joined)
                raise
            self._joining = None
        self._lone_reads = 0 if joined else self._lone_reads + 1
        found = await self._read([key, *(k for k, _ in joined)], joined, lead=True)
        if key not in found:
            raise _missing(key)
        return found[key]

    def _waits_for_company(self) -> bool:
        lone = self._lone_reads
        return lone < LONE_READS_BEFORE_SKIPPING or lone % PROBE_EVERY == 0

    async def _read(
        self, keys: Sequence[K], waiters: list[Waiter[K, V]], *, lead: bool
    ) -> Mapping[K, V]:
        """Fetch ``keys`` and answer ``waiters``; ``lead``: the caller is the batch's first
        request, whose cancellation must not take the others' answers with it."""
        try:
            found = await self._fetch(list(dict.fromkeys(keys)))
        except Exception as exc:
            for _, future in waiters:
                if not future.done():
                    future.set_exception(exc)
            raise
        except BaseException:
            if lead:
                self._hand_off(waiters)
            else:  # the hand-off task itself was cancelled: the loop is closing
                for _, future in waiters:
                    future.cancel()
            raise
        for key, future in waiters:
            if future.done():  # a waiter cancelled meanwhile is simply skipped
                continue
            if key in found:
                future.set_result(found[key])
            else:  # a fetch that skipped a key must not leave its waiter waiting forever
                future.set_exception(_missing(key))
        return found

    def _hand_off(self, waiters: list[Waiter[K, V]]) -> None:
        waiting = [(key, future) for key, future in waiters if not future.done()]
        if waiting:
            task = asyncio.get_running_loop().create_task(self._answer(waiting))
            self._handed_off.add(task)
            task.add_done_callback(self._handed_off.discard)

    async def _answer(self, waiters: list[Waiter[K, V]]) -> None:
        with contextlib.suppress(Exception):  # a failed read was raised to each waiter
            await self._read([key for key, _ in waiters], waiters, lead=False)


def _missing(key: object) -> LookupError:
    return LookupError(f"the batched read returned no value for {key!r}")
