"""Walking a keyspace pattern with SCAN, a page at a time (admin paths such as erasure).

SCAN never blocks Redis the way KEYS does, and paging bounds the memory of a caller going
through millions of keys. A key may be returned twice (SCAN's guarantee); callers act
idempotently. On a Redis Cluster each master holds its own keyspace, so the walk goes through
every master in turn (replicas hold copies of their master's keys).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode

from app.infra.redis_client import RedisClient

SCAN_PAGE = 1000  # keys asked for per SCAN call


async def scan_pages(client: RedisClient, match: str) -> AsyncIterator[list[str]]:
    """The keys matching ``match`` (decoded), one non-empty page per SCAN call that found
    some."""
    if isinstance(client, Redis):
        async for page in _scan_node(client, match, None):
            yield page
        return
    await client.initialize()  # no-op once the slot layout is known
    for master in client.get_primaries():
        async for page in _scan_node(client, match, master):
            yield page


async def _scan_node(
    client: RedisClient, match: str, node: ClusterNode | None
) -> AsyncIterator[list[str]]:
    cursor = 0
    while True:
        if isinstance(client, RedisCluster) and node is not None:
            # A cluster client answers {node name: cursor} and the node's keys.
            cursors, keys = await client.scan(
                cursor, match=match, count=SCAN_PAGE, target_nodes=node
            )
            cursor = cursors[node.name]
        else:
            cursor, keys = await client.scan(cursor, match=match, count=SCAN_PAGE)
        if keys:
            yield [key.decode() for key in keys]
        if cursor == 0:
            return
