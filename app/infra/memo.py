"""Pure functions of large values on the request path (decoded profiles, their item indices)
remembered within a memory budget: cachetools' LRU, weighed by the bytes each entry holds as
the caller estimates them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from operator import itemgetter
from typing import ParamSpec, TypeVar

from cachetools import LRUCache, cached

P = ParamSpec("P")
V = TypeVar("V")

_held_bytes = itemgetter(1)


def memoised(
    compute: Callable[P, tuple[V, int]], key: Callable[P, Hashable], max_bytes: int
) -> Callable[P, V]:
    """``compute``'s value, remembered by ``key`` of the same arguments while the remembered
    entries' sizes (``compute``'s second result, in bytes) add up to at most ``max_bytes``,
    least recently used out first. An entry larger than the budget is never kept; 0 keeps
    nothing. Safe to share between threads (sync routes run on a thread pool)."""
    if max_bytes <= 0:
        return lambda *args, **kwargs: compute(*args, **kwargs)[0]
    entries: LRUCache[Hashable, tuple[V, int]] = LRUCache(max_bytes, getsizeof=_held_bytes)
    # cachetools drops a value larger than the cache (its ValueError) and returns it.
    remembered = cached(entries, key=key, lock=threading.Lock())(compute)
    return lambda *args, **kwargs: remembered(*args, **kwargs)[0]
