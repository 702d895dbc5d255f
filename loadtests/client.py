"""A load generator that is cheaper than the servers it measures.

asyncio raw sockets (uvloop when installed), HTTP/1.1 keep-alive, request bytes built once,
responses framed by ``Content-Length`` only. Each load runs in a child process so its CPU use
is its own and can be reported beside the figures (``resource.getrusage`` in the child).

Two shapes of load:

* **closed loop**: ``connections`` clients each send the next request as soon as the previous
  answer arrives: the server's maximum throughput.
* **open loop**: requests are due at a fixed rate whatever the server does, each sent on a
  connection that is free at that moment, as a client's connection pool or a proxy sends it;
  latency counts from the moment a request was *due*, so a stalled server is charged for the
  queue it causes (no coordinated omission). When every connection is busy the request waits
  for the first one free, and that wait is in its latency.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from loadtests.latency import percentiles

_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\ncontent-length:"
_CACHE_FIELD = b'"cache":'
# Connections open this far apart, as real clients do, not in one burst: uvicorn's workers
# share one listening socket, and the worker that wakes first for a burst accepts all of it
# (one worker then serves every connection while the other idles, ceiling included).
OPEN_SPACING_S = 0.002


@dataclass(frozen=True)
class LoadSpec:
    """What one load run sends: ``requests`` are cycled, each connection from its own offset."""

    port: int
    requests: Sequence[bytes]
    connections: int
    duration_s: float
    rate_per_s: float | None = None  # None: closed loop; else open loop at this total rate
    host: str = "127.0.0.1"


@dataclass
class LoadResult:
    """Raw outcome of a run: per-request latencies and what answered."""

    latencies_ms: list[float] = field(default_factory=list)
    # When each answer arrived, seconds from the start of the run (same order as latencies_ms),
    # so a long run can be cut into time windows.
    completed_s: list[float] = field(default_factory=list)
    failed_s: list[float] = field(default_factory=list)  # when each error happened, likewise
    # Open loop: how late each request left after its due time (counted in its latency). It is
    # the client's own timer delay (~1 ms with uvloop) while the server keeps up, and grows
    # when a connection is still waiting for its previous answer: the server fell behind.
    send_delay_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    cache_tiers: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0


def get_request(
    path: str, host: str = "127.0.0.1", headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """The bytes of a keep-alive ``GET path`` to ``host``, with extra ``headers``."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *(f"{n}: {v}" for n, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def recommend_requests(
    user_ids: Sequence[str],
    k: int = 10,
    *,
    host: str = "127.0.0.1",
    prefix: str = "",
    headers: Sequence[tuple[str, str]] = (),
) -> list[bytes]:
    """One pre-built ``GET {prefix}/recommend`` per user id, in order."""
    return [
        get_request(f"{prefix}/recommend?user_id={quote(u, safe='')}&k={k}", host, headers)
        for u in user_ids
    ]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(_HEADER_END)
    status = int(head[9:12])
    start = head.lower().find(_CONTENT_LENGTH)
    if start < 0:
        raise ValueError(f"response without Content-Length: {head[:200]!r}")
    start += len(_CONTENT_LENGTH)
    length = int(head[start : head.index(b"\r", start)])
    return status, await reader.readexactly(length)


def _cache_tier(body: bytes) -> str:
    """The ``cache`` field of a recserve answer without parsing the JSON ("-" if absent)."""
    at = body.find(_CACHE_FIELD)
    if at < 0:
        return "-"
    value = body[at + len(_CACHE_FIELD) : at + len(_CACHE_FIELD) + 8]
    return value.split(b",")[0].split(b"}")[0].strip(b'" ').decode()


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _open(spec: LoadSpec, index: int) -> Connection:
    await asyncio.sleep(index * OPEN_SPACING_S)
    return await asyncio.open_connection(spec.host, spec.port)


async def _exchange(
    spec: LoadSpec,
    connection: Connection,
    request: bytes,
    started: float,
    t0: float,
    result: LoadResult,
) -> Connection:
    """Send ``request`` and record its answer; the connection to go on with (a new one after
    an error)."""
    reader, writer = connection
    try:
        writer.write(request)
        status, body = await _read_response(reader)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        result.errors += 1
        result.failed_s.append(time.perf_counter() - t0)
        writer.close()
        return await asyncio.open_connection(spec.host, spec.port)
    finished = time.perf_counter()
    result.latencies_ms.append((finished - started) * 1000)
    result.completed_s.append(finished - t0)
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if status != 200:
        result.errors += 1
        result.failed_s.append(finished - t0)
    tier = _cache_tier(body)
    result.cache_tiers[tier] = result.cache_tiers.get(tier, 0) + 1
    return connection


async def _closed_loop(spec: LoadSpec, index: int, t0: float, result: LoadResult) -> None:
    """One keep-alive connection sending its next request as soon as an answer arrives."""
    connection = await _open(spec, index)
    n_req = len(spec.requests)
    deadline = t0 + spec.duration_s
    i = index
    while (started := time.perf_counter()) < deadline:
        connection = await _exchange(
            spec, connection, spec.requests[i % n_req], started, t0, result
        )
        i += spec.connections
    connection[1].close()


async def _open_loop(spec: LoadSpec, rate: float, t0: float, result: LoadResult) -> None:
    """Every request on the connection free longest when it is due (first in, first out, so
    the connections take turns while all keep up)."""
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in await asyncio.gather(*(_open(spec, c) for c in range(spec.connections))):
        free.put_nowait(connection)

    # Set by a request whose connection broke and could not be reopened: the run ends with it
    # instead of waiting for a connection that will not come back.
    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def send(connection: Connection, request: bytes, due: float) -> None:
        try:
            free.put_nowait(await _exchange(spec, connection, request, due, t0, result))
        except Exception as exc:  # raised by the dispatcher, once
            if not failed.done():
                failed.set_exception(exc)

    async def take() -> Connection:
        if not free.empty():  # the common case: no waiting, no task
            return free.get_nowait()
        getting = asyncio.ensure_future(free.get())
        await asyncio.wait((getting, failed), return_when=asyncio.FIRST_COMPLETED)
        if failed.done():
            getting.cancel()
            failed.result()  # raises the failure
        return getting.result()

    sending: set[asyncio.Task[None]] = set()
    n_req = len(spec.requests)
    try:
        for i in range(int(spec.duration_s * rate)):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if failed.done():
                failed.result()
            connection = await take()
            result.send_delay_ms.append((time.perf_counter() - due) * 1000)
            task = asyncio.create_task(send(connection, spec.requests[i % n_req], due))
            sending.add(task)
            task.add_done_callback(sending.discard)
    finally:
        await asyncio.gather(*sending)
    if failed.done():
        failed.result()
    while not free.empty():
        free.get_nowait()[1].close()


async def _run(spec: LoadSpec) -> LoadResult:
    result = LoadResult()
    # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
    # Let every connection open first.
    t0 = time.perf_counter() + 0.05 + spec.connections * OPEN_SPACING_S
    if spec.rate_per_s:
        await _open_loop(spec, spec.rate_per_s, t0, result)
    else:
        await asyncio.gather(*(_closed_loop(spec, c, t0, result) for c in range(spec.connections)))
    result.wall_s = time.perf_counter() - t0
    return result


def _run_in_child(spec: LoadSpec) -> LoadResult:
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # the client still works, only a little more expensive
        pass
    before = resource.getrusage(resource.RUSAGE_SELF)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(_run(spec))
    after = resource.getrusage(resource.RUSAGE_SELF)
    result.client_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def run_load(spec: LoadSpec, processes: int = 1) -> LoadResult:
    """Run ``spec`` in ``processes`` child processes (connections and rate split between them)
    and merge their results; ``client_cpu_s`` is the children's summed CPU time."""
    share = max(1, spec.connections // processes)
    rate = spec.rate_per_s / processes if spec.rate_per_s else None
    specs = [
        replace(spec, requests=spec.requests[p::processes], connections=share, rate_per_s=rate)
        for p in range(processes)
    ]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_run_in_child, specs)
    merged = LoadResult(wall_s=max(p.wall_s for p in parts))
    for part in parts:
        merged.latencies_ms.extend(part.latencies_ms)
        merged.completed_s.extend(part.completed_s)
        merged.failed_s.extend(part.failed_s)
        merged.send_delay_ms.extend(part.send_delay_ms)
        merged.errors += part.errors
        merged.client_cpu_s += part.client_cpu_s
        for code, n in part.statuses.items():
            merged.statuses[code] = merged.statuses.get(code, 0) + n
        for tier, n in part.cache_tiers.items():
            merged.cache_tiers[tier] = merged.cache_tiers.get(tier, 0) + n
    return merged


def summarize(result: LoadResult) -> dict[str, Any]:
    """Percentiles (ms), throughput, the client's share of one core and what answered."""
    if not result.latencies_ms:
        raise RuntimeError(f"no answer at all: {result.errors} errors")
    summary: dict[str, Any] = {
        "requests": len(result.latencies_ms),  # answered
        "rps": round(len(result.latencies_ms) / result.wall_s, 1),
        "errors": result.errors,
        **percentiles(result.latencies_ms),
        "client_cpu_core": round(result.client_cpu_s / result.wall_s, 2),
        "statuses": dict(result.statuses),
        "cache_tiers": dict(result.cache_tiers),
    }
    if result.send_delay_ms:
        summary["send_delay_p99_ms"] = percentiles(result.send_delay_ms)["p99_ms"]
    return summary
