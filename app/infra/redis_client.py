"""Redis URLs and clients for every role: one server or a Redis Cluster.

A role's URL is either a single server, ``redis://[user:password@]host[:port][/db]`` (TLS:
``rediss://``), or a cluster, ``redis+cluster://[user:password@]host:port,host:port,.../``
(TLS: ``rediss+cluster://``) listing seed nodes: the client asks any of them for the slot
layout, follows ``MOVED`` redirections and re-reads the layout after a failover. A cluster has
no database number.

On a cluster, keys one command or script touches together must share a hash slot:
``slot_tag`` wraps a key prefix in ``{...}`` there, and leaves one server's key names as they
always were.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SINGLE_SCHEMES = ("redis", "rediss")

RedisClient = Redis | RedisCluster


@dataclass(frozen=True)
class ClusterUrl:
    """A parsed ``redis+cluster://`` URL."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def check_redis_url(url: str) -> str:
    """``url`` unchanged when it is a usable single-server or cluster URL; else ``ValueError``
    naming what is wrong."""
    scheme = urlsplit(url).scheme
    if scheme in CLUSTER_SCHEMES:
        parse_cluster_url(url)
    elif scheme not in SINGLE_SCHEMES:
        raise ValueError(
            f"Redis URL scheme {scheme!r}: expected redis://, rediss://, redis+cluster:// "
            "or rediss+cluster://"
        )
    return url


def parse_cluster_url(url: str) -> ClusterUrl:
    """The seed nodes and credentials of a cluster URL; ``ValueError`` when malformed."""
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        raise ValueError("a Redis Cluster URL starts with redis+cluster:// or rediss+cluster://")
    if parts.path.strip("/"):
        raise ValueError("a Redis Cluster URL has no database number (the path must be empty)")
    if parts.query or parts.fragment:
        raise ValueError("a Redis Cluster URL takes no query parameters")
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    nodes: list[tuple[str, int]] = []
    for node in hosts.split(","):
        host, _, port = node.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("each Redis Cluster seed node must be host:port")
        nodes.append((host.strip("[]"), int(port)))
    return ClusterUrl(
        tuple(nodes),
        unquote(username) or None,
        unquote(password) or None,
        parts.scheme == "rediss+cluster",
    )


def redis_client(
    url: str,
    *,
    socket_timeout: float | None,
    connect_timeout: float,
    health_check_interval: float = 0,
    socket_keepalive: bool = False,
) -> RedisClient:
    """A client for ``url``, built once at start-up; no I/O until the first command.

    Every command is bounded by ``socket_timeout`` (None: unbounded, for blocking readers) and
    connecting by ``connect_timeout``, and is never retried: a caller on the request path
    prefers a miss to a second wait, and the stores' callers retry whole operations. A cluster
    client still follows ``MOVED``/``ASK`` redirections, and re-reads the slot layout after a
    connection error, so the call after a failover reaches the promoted replica.
    """
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "health_check_interval": health_check_interval,
        "socket_keepalive": socket_keepalive,
        "retry": Retry(NoBackoff(), retries=0),
    }
    if not is_cluster_url(url):
        return Redis.from_url(url, **options)
    cluster = parse_cluster_url(url)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster.nodes],
        username=cluster.username,
        password=cluster.password,
        ssl=cluster.tls,
        **options,
    )


def slot_tag(client: RedisClient, prefix: str) -> str:
    """``{prefix}`` on a cluster, so every key starting with it maps to one hash slot (one
    master); ``prefix`` itself on one server, or when it already holds a tag."""
    if isinstance(client, RedisCluster) and "{" not in prefix:
        return f"{{{prefix}}}"
    return prefix


def socket_timeout_of(client: RedisClient) -> float | None:
    """The socket timeout every command of ``client`` is bounded by."""
    if isinstance(client, RedisCluster):
        timeout = client.connection_kwargs.get("socket_timeout")
    else:
        timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    return None if timeout is None else float(timeout)


def decodes_responses(client: RedisClient) -> bool:
    if isinstance(client, RedisCluster):
        return bool(client.connection_kwargs.get("decode_responses"))
    return bool(client.connection_pool.connection_kwargs.get("decode_responses"))


def node_clients(client: RedisCluster, *, socket_timeout: float) -> list[Redis]:
    """One plain client per node of the cluster, masters and replicas (for per-server admin
    commands such as ``BGSAVE``); the caller closes them."""
    options = client.connection_kwargs
    return [
        Redis(
            host=node.host,
            port=int(node.port),
            username=options.get("username"),
            password=options.get("password"),
            ssl=options.get("connection_class") is SSLConnection,
            socket_timeout=socket_timeout,
            socket_connect_timeout=options.get("socket_connect_timeout"),
        )
        for node in client.get_nodes()
    ]


class Script:
    """A Lua script run by ``EVALSHA``, falling back to ``EVAL`` (which caches it) when the
    server answers ``NOSCRIPT``: a restarted server, or on a cluster the replica promoted in a
    failover, does not know it yet. redis-py's own fallback, ``SCRIPT LOAD`` then ``EVALSHA``,
    can send the load to another node than the one owning the keys after a failover; ``EVAL``
    goes where the keys are."""

    def __init__(self, client: RedisClient, text: str) -> None:
        self._client = client
        self._text = text
        self._sha = hashlib.sha1(text.encode()).hexdigest()

    async def __call__(self, keys: Sequence[KeyT] = (), args: Sequence[EncodableT] = ()) -> Any:
        try:
            return await cast(
                "Awaitable[Any]", self._client.evalsha(self._sha, len(keys), *keys, *args)
            )
        except NoScriptError:
            return await cast(
                "Awaitable[Any]", self._client.eval(self._text, len(keys), *keys, *args)
            )


def register_script(client: RedisClient, text: str) -> Script:
    """A Lua script callable on ``client``, one server or a cluster (whose keys must then share
    a slot)."""
    return Script(client, text)
