"""Random hex ids for each request (trace and span ids, recommendation ids), cut from a buffer
of OS randomness.

Every answer needs fresh ids. Asking the OS for them one by one (``os.urandom``, ``uuid4``)
is one ``getrandom`` system call each: the two of an answer cost 11-16 µs more than ids cut
from this buffer, measured between the engine's answers (``loadtests.engine_loop``); one 4 KiB
read serves about a hundred answers. The bytes are the OS's and each is handed out once, so the
ids are as unpredictable as ``os.urandom``'s. A forked child drops the buffer it inherited, so
parent and child never share ids.
"""

from __future__ import annotations

import os
import threading

BUFFER_BYTES = 4096


class _RandomBuffer:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # a webhook or executor thread may ask too
        self._bytes = b""
        self._position = 0

    def take(self, n_bytes: int) -> bytes:
        with self._lock:
            end = self._position + n_bytes
            if end > len(self._bytes):
                self._bytes = os.urandom(max(BUFFER_BYTES, n_bytes))
                self._position, end = 0, n_bytes
            taken = self._bytes[self._position : end]
            self._position = end
            return taken

    def drop(self) -> None:
        self._lock = threading.Lock()  # a fork may have copied it held
        self._bytes = b""
        self._position = 0


_BUFFER = _RandomBuffer()
os.register_at_fork(after_in_child=_BUFFER.drop)


def random_hex(n_bytes: int) -> str:
    """``n_bytes`` fresh random bytes as ``2 * n_bytes`` lowercase hex digits."""
    return _BUFFER.take(n_bytes).hex()
