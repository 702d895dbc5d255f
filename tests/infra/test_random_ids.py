from __future__ import annotations

import os
import re

from app.infra.random_ids import BUFFER_BYTES, random_hex


def test_ids_are_hex_of_the_asked_length_and_never_repeat_across_buffer_refills() -> None:
    n = 3 * BUFFER_BYTES // 16  # three refills of the buffer
    ids = [random_hex(16) for _ in range(n)]

    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == n
    assert len(random_hex(BUFFER_BYTES + 1)) == 2 * (BUFFER_BYTES + 1)  # larger than a buffer


def test_a_forked_child_does_not_hand_out_the_parents_next_ids() -> None:
    random_hex(16)  # the buffer is filled and partly used before the fork
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id, then leave without running pytest's exit
        os.write(write_end, random_hex(16).encode())
        os._exit(0)
    os.close(write_end)
    parent_next = random_hex(16)
    child_next = os.read(read_end, 64).decode()
    os.waitpid(pid, 0)
    os.close(read_end)

    assert re.fullmatch(r"[0-9a-f]{32}", child_next)
    assert child_next != parent_next
