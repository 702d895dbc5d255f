"""A throwaway PostgreSQL server owned by one test module: its own cluster (initdb) in a
temporary directory and its own port, so a test may crash and restart it without touching the
shared server every other test uses."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.integration.private_server import PrivateServer

# initdb and postgres refuse to run as root: as root they run as this user.
SERVER_USER = "postgres"


def server_binaries() -> Path | None:
    """The bin directory of the newest PostgreSQL installed the Debian way, if any."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    return found[-1].parent if found else None


class PrivatePostgres(PrivateServer):
    """``postgres`` on a free port with a fresh cluster in ``directory``, trust authentication
    on 127.0.0.1 and ``fsync`` on (an acknowledged commit survives an immediate stop)."""

    def __init__(self, directory: Path, binaries: Path) -> None:
        super().__init__(directory)
        self.executable = str(binaries / "postgres")
        self._initdb = binaries / "initdb"
        self._user = SERVER_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Create the cluster on first use, start the server and wait until it answers."""
        if not (self.directory / "PG_VERSION").exists():
            self._init_cluster()
        argv = [
            *("-D", str(self.directory), "-p", str(self.port)),
            *("-c", "listen_addresses=127.0.0.1"),
            *("-c", f"unix_socket_directories={self.directory}"),
        ]
        self._launch(argv, self._answers, "accept connections", user=self._user)

    def stop_immediately(self) -> None:
        """Immediate shutdown (SIGQUIT): every backend quits at once, no checkpoint, so the
        next start recovers from the WAL as after a crash."""
        assert self._process is not None
        self._process.send_signal(signal.SIGQUIT)
        self._process.wait(10)
        self._process = None

    def _init_cluster(self) -> None:
        argv = [str(self._initdb), "-D", str(self.directory), "-U", "postgres"]
        argv += ["--auth=trust", "--encoding=UTF8", "--no-sync"]
        subprocess.run(argv, check=True, capture_output=True, user=self._user, timeout=60)

    def _answers(self) -> bool:
        try:
            psycopg.connect(self.url, connect_timeout=1).close()
        except psycopg.OperationalError:
            return False
        return True


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started ``PrivatePostgres``, killed and deleted on exit. Without the PostgreSQL server
    installed the test skips, except on CI (``CI=true``), where it fails. Its directory is made
    outside pytest's temporary tree, which the server's user cannot enter as root runs it."""
    binaries = server_binaries()
    if binaries is None:
        missing = "the PostgreSQL server is not installed (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    directory = Path(tempfile.mkdtemp(prefix="recserve-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, SERVER_USER, SERVER_USER)
    server = PrivatePostgres(directory, binaries)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)
