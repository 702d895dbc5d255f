"""Several API replicas behind HAProxy on one machine, each standing in for a host: its own
home (a copy of one build) and port, sharing one Redis, one PostgreSQL and one models
directory. The integration test of the multi-host deployment and the replicas benchmark run
it; HAProxy runs the very configuration docker-compose.yml ships (deploy/haproxy/).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from loadtests.server import free_port, recserve_argv, running

HAPROXY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "haproxy" / "haproxy.cfg"
# The servers deploy/haproxy/haproxy.cfg declares, in order.
SERVER_NAMES = ("api-1", "api-2")
# Generous: several replicas importing the stack at once on a busy two-core machine.
START_TIMEOUT_SECONDS = 180.0


@dataclass(frozen=True)
class SharedStores:
    """What every replica shares: the Redis of every role (online store, cache and its
    invalidations), the database of record and the models directory a build publishes to."""

    redis_url: str
    database_url: str
    schema: str
    models_dir: Path

    def env(self) -> dict[str, str]:
        return {
            "RECSERVE_REDIS_URL": self.redis_url,
            "RECSERVE_DATABASE_URL": self.database_url,
            "RECSERVE_DATABASE__SCHEMA_NAME": self.schema,
            "RECSERVE_MODELS_DIR": str(self.models_dir),
        }


@dataclass
class Replica:
    """One ``recserve serve`` on its own home and port; started, killed and restarted at will."""

    name: str
    home: Path
    env: dict[str, str]
    log_path: Path  # the server's stderr (its JSON log lines), rewritten at each start
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _stack: ExitStack = field(default_factory=ExitStack)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and return once it answers /healthz."""
        env = {**self.env, "RECSERVE_HOME": str(self.home)}
        argv = recserve_argv(self.port, self.workers)
        self.process = self._stack.enter_context(
            running(
                argv, self.port, env=env, timeout=START_TIMEOUT_SECONDS, stderr_path=self.log_path
            )
        )

    def kill(self) -> None:
        """SIGKILL the server and its workers at once, as a host failure would."""
        if self.process is not None:
            for pid in _process_tree(self.process.pid):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.stop()

    def stop(self) -> None:
        self._stack.close()
        self.process = None


def _process_tree(pid: int) -> list[int]:
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


class LoadBalancer:
    """HAProxy with ``HAPROXY_CONFIG``, its servers pointed at ``replicas``."""

    def __init__(self, replicas: list[Replica], log_path: Path) -> None:
        if len(replicas) != len(SERVER_NAMES):
            raise ValueError(f"the HAProxy config declares {len(SERVER_NAMES)} replicas")
        self.port = free_port()
        self.stats_port = free_port()
        self._replicas = replicas
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    def env(self) -> dict[str, str]:
        servers = {
            f"RECSERVE_API_{n}": f"127.0.0.1:{replica.port}"
            for n, replica in enumerate(self._replicas, 1)
        }
        return {
            "RECSERVE_LB_BIND": f"127.0.0.1:{self.port}",
            "RECSERVE_LB_STATS": f"127.0.0.1:{self.stats_port}",
            **servers,
        }

    def start(self, timeout: float = 10.0) -> None:
        """Start HAProxy in the foreground (``-db``) and wait until every server is UP."""
        haproxy = shutil.which("haproxy")
        if haproxy is None:
            raise FileNotFoundError("haproxy is not installed (apt-get install haproxy)")
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [haproxy, "-db", "-f", str(HAPROXY_CONFIG)],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_for(dict.fromkeys(SERVER_NAMES, "UP"), timeout)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
            self._process = None

    def server_states(self) -> dict[str, str]:
        """Each replica's state as HAProxy sees it (UP, DOWN, "UP 1/2" while rising...)."""
        url = f"http://127.0.0.1:{self.stats_port}/stats;csv"
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode().lstrip("# ")
        return {
            row["svname"]: row["status"]
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == "replicas" and row["svname"] in SERVER_NAMES
        }

    def wait_for(self, states: Mapping[str, str], timeout: float) -> float:
        """Seconds until every server named in ``states`` is in its state; raises
        ``TimeoutError`` after ``timeout``."""
        started = time.monotonic()
        seen: dict[str, str] = {}
        while time.monotonic() - started < timeout:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self._process.returncode}")
            try:
                seen = self.server_states()
            except OSError:
                seen = {}
            if all(seen.get(name) == state for name, state in states.items()):
                return time.monotonic() - started
            time.sleep(0.05)
        raise TimeoutError(f"servers {seen}, wanted {dict(states)} within {timeout}s")


@dataclass
class Topology:
    replicas: list[Replica]
    balancer: LoadBalancer


@contextmanager
def replicas_behind_haproxy(
    homes: list[Path],
    shared: SharedStores,
    directory: Path,
    *,
    workers: int = 1,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Topology]:
    """One replica per home (``workers`` uvicorn workers each) on ``shared`` stores, behind
    HAProxy; everything is stopped when the block ends. The replicas start together, as a
    deployment starts them: the first to take the migration lock migrates the database."""
    env = {**shared.env(), **(extra_env or {})}
    replicas = [
        Replica(name, home, env, directory / f"{name}.log", workers)
        for name, home in zip(SERVER_NAMES, homes, strict=True)
    ]
    balancer = LoadBalancer(replicas, directory / "haproxy.log")
    try:
        with ThreadPoolExecutor(len(replicas)) as pool:
            list(pool.map(Replica.start, replicas))
        balancer.start()
        yield Topology(replicas, balancer)
    finally:
        balancer.stop()
        for replica in replicas:
            replica.stop()
