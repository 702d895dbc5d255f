"""The payload of a cross-worker invalidation message on Redis pub/sub: a JSON array of the
keys (user ids, consent keys) to drop, so one message covers a whole batch."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson

log = logging.getLogger(__name__)


def encode_invalidation(keys: Sequence[str]) -> bytes:
    return orjson.dumps(list(keys))


def decode_invalidation(data: bytes) -> list[str]:
    """The keys of one message; anything else is logged and skipped, never fatal to the
    subscription."""
    try:
        keys = orjson.loads(data)
    except orjson.JSONDecodeError:
        keys = None
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        log.warning("ignored a malformed invalidation message (%d bytes)", len(data))
        return []
    return keys
