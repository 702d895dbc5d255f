"""Walking a keyspace pattern with SCAN, a page at a time (admin paths such as erasure).

SCAN never blocks Redis the way KEYS does, and paging bounds the memory of a caller going
through millions of keys. A key may be returned twice (SCAN's guarantee); callers act
idempotently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from redis.asyncio import Redis

SCAN_PAGE = 1000  # keys asked for per SCAN call


async def scan_pages(client: Redis, match: str) -> AsyncIterator[list[str]]:
    """The keys matching ``match`` (decoded), one non-empty page per SCAN call that found
    some."""
    cursor = 0
    while True:
        cursor, keys = await client.scan(cursor, match=match, count=SCAN_PAGE)
        if keys:
            yield [key.decode() for key in keys]
        if cursor == 0:
            return
