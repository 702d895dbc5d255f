"""Leave no byte of an erased user in Redis: in memory, in the RDB snapshot, in the AOF.

``XDEL`` only flags a stream entry deleted: its bytes stay in the stream's listpack node until
every entry of that node is gone, and RDB snapshots (the AOF's RDB preamble too) copy the node
whole. So after deleting a user's entries the stream is **rewritten**: one script copies every
remaining entry, with its id, into a fresh key, recreates each consumer group at its
last-delivered id with its consumers and pending entries (owner, idle time, delivery count),
keeps the stream's last id and counters, and renames the copy over the original. Atomic like
any script, and O(stream length): Redis serves nothing else meanwhile (``max_stream_length``
bounds it).

Memory is then clean, but files are not: the last snapshot and the AOF still hold what was
deleted. ``rewrite_persistence`` asks Redis for ``BGREWRITEAOF`` (when the AOF is on) and
``BGSAVE``, retrying while another rewrite or save, started before the erasure, is running; once
both finish, no file under Redis' ``dir`` holds the user.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from app.infra.redis_client import RedisClient, register_script

log = logging.getLogger(__name__)

COMPACTING_SUFFIX = ":compacting"
PERSISTENCE_ATTEMPTS = 60
PERSISTENCE_RETRY_SECONDS = 1.0

# KEYS[1]: the stream; KEYS[2]: scratch key for the copy. Returns the entries copied.
_REWRITE_SCRIPT = """
local src, dst = KEYS[1], KEYS[2]
local function fields(reply)
  local t = {}
  for i = 1, #reply, 2 do t[reply[i]] = reply[i + 1] end
  return t
end
if redis.call('EXISTS', src) == 0 then return 0 end
redis.call('DEL', dst)
local info = fields(redis.call('XINFO', 'STREAM', src))
local copied = 0
local start = '-'
while true do
  local entries = redis.call('XRANGE', src, start, '+', 'COUNT', 1000)
  if #entries == 0 then break end
  for _, entry in ipairs(entries) do
    redis.call('XADD', dst, entry[1], unpack(entry[2]))
    copied = copied + 1
  end
  start = '(' .. entries[#entries][1]
end
if copied == 0 then
  redis.call('XGROUP', 'CREATE', dst, 'recserve-rewrite', '0', 'MKSTREAM')
  redis.call('XGROUP', 'DESTROY', dst, 'recserve-rewrite')
end
redis.call('XSETID', dst, info['last-generated-id'], 'ENTRIESADDED', info['entries-added'],
  'MAXDELETEDID', info['max-deleted-entry-id'])
for _, raw in ipairs(redis.call('XINFO', 'GROUPS', src)) do
  local group = fields(raw)
  local name = group['name']
  if group['entries-read'] then
    redis.call('XGROUP', 'CREATE', dst, name, group['last-delivered-id'],
      'ENTRIESREAD', group['entries-read'])
  else
    redis.call('XGROUP', 'CREATE', dst, name, group['last-delivered-id'])
  end
  for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', src, name)) do
    redis.call('XGROUP', 'CREATECONSUMER', dst, name, fields(consumer)['name'])
  end
  local from = '-'
  while true do
    local pending = redis.call('XPENDING', src, name, from, '+', 1000)
    if #pending == 0 then break end
    for _, p in ipairs(pending) do
      redis.call('XCLAIM', dst, name, p[2], 0, p[1], 'IDLE', p[3], 'RETRYCOUNT', p[4],
        'FORCE', 'JUSTID')
    end
    from = '(' .. pending[#pending][1]
  end
end
redis.call('RENAME', dst, src)
return copied
"""


async def rewrite_stream(client: RedisClient, stream_key: str) -> int:
    """Rewrite ``stream_key`` so entries deleted from it leave no bytes behind; returns the
    entries kept. Raises ``RedisError``."""
    script = register_script(client, _REWRITE_SCRIPT)
    copied = await script(keys=[stream_key, stream_key + COMPACTING_SUFFIX])
    return int(cast("int", copied))


async def rewrite_persistence(
    client: Redis,
    *,
    attempts: int = PERSISTENCE_ATTEMPTS,
    retry_seconds: float = PERSISTENCE_RETRY_SECONDS,
) -> bool:
    """Start an AOF rewrite (when the AOF is on) and a snapshot, each retried while one begun
    earlier is still running. True once both are started; False (logged) when Redis refuses
    them (a managed Redis may disable the commands) or stays busy."""
    try:
        info: dict[str, Any] = await client.info("persistence")
        pending = ["aof", "rdb"] if int(info.get("aof_enabled", 0)) else ["rdb"]
        for _ in range(attempts):
            pending = [kind for kind in pending if not await _start(client, kind)]
            if not pending:
                return True
            await asyncio.sleep(retry_seconds)
    except RedisError as exc:
        log.error(
            "erasure: Redis refused to rewrite its files (%s); run BGREWRITEAOF and BGSAVE", exc
        )
        return False
    log.error("erasure: Redis stayed busy; run BGREWRITEAOF and BGSAVE once it is idle")
    return False


async def _start(client: Redis, kind: str) -> bool:
    """Whether the rewrite (``aof``) or snapshot (``rdb``) was started or scheduled now."""
    try:
        if kind == "aof":
            await client.bgrewriteaof()
        else:
            await client.bgsave(schedule=True)  # scheduled after a running AOF rewrite
    except ResponseError as exc:
        if "in progress" in str(exc):
            return False
        raise
    return True
