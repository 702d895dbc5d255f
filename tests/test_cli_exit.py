"""The ``recserve`` console script leaves with its command's status after the interpreter's
exit work (threads joined, ``atexit`` handlers run, output flushed), without the teardown."""

from __future__ import annotations

import subprocess
import sys


def _run_script(argv: list[str], *, before: str = "") -> subprocess.CompletedProcess[str]:
    code = "\n".join(
        [
            "import atexit, sys, threading, time",
            "from app import cli",
            before,
            f"sys.argv = {['recserve', *argv]!r}",
            "cli.run()",
            "print('not reached')",
        ]
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_command_exits_with_its_status_after_atexit_handlers_and_threads() -> None:
    result = _run_script(
        ["--version"],
        before=(
            "from concurrent.futures import ThreadPoolExecutor\n"
            "ThreadPoolExecutor(1).submit(time.sleep, 0.1)\n"  # an idle worker must not hang it
            "atexit.register(lambda: print('atexit handler ran'))\n"
            "threading.Thread(target=lambda: (time.sleep(0.3), print('thread finished'))).start()"
        ),
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("recserve ")
    assert lines[1:] == ["thread finished", "atexit handler ran"]


def test_a_refused_argument_keeps_argparse_status_and_message() -> None:
    result = _run_script(["segment", "--clusters", "many"])

    assert result.returncode == 2
    assert "--clusters" in result.stderr
    assert result.stdout == ""


def test_a_failing_command_exits_non_zero() -> None:
    result = _run_script(["status"], before="cli.main = lambda: 3")

    assert result.returncode == 3
    assert result.stdout == ""
