"""A real ``recserve serve`` in a subprocess, talked to over HTTP, and a private Redis server
that a test may kill and restart without touching the shared one."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from app.data.ingest import load_dataset
from app.features.store import apply_and_materialize
from app.settings import Settings
from feature_repo.definitions import EVENT_TIMESTAMP, offline_file
from loadtests.server import free_port, recserve_argv, running
from tests.integration.private_server import PrivateServer, owned_server

# A personalised slot and a popular one, for tests of content blocks over HTTP.
TWO_SLOTS = """
[[slots]]
id = "for-you"
title = "For you"
k = 6
strategy = "personalized"

[[slots]]
id = "trending"
title = "Trending"
k = 6
strategy = "popular"
"""


@contextmanager
def serve(
    home: Path,
    *,
    workers: int = 1,
    redis_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[httpx.Client]:
    """Run ``recserve serve`` on ``home`` until the block ends; yield a client bound to it."""
    port = free_port()
    env = {"RECSERVE_HOME": str(home), **(extra_env or {})}
    if redis_url is not None:
        env["RECSERVE_REDIS_URL"] = redis_url
    with (
        running(recserve_argv(port, workers), port, env=env),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as http,
    ):
        yield http


def copy_home(settings: Settings, destination: Path) -> Settings:
    """A private copy of a built home, so a test may break it without affecting others."""
    shutil.copytree(settings.home, destination)
    return settings.model_copy(update={"home": destination})


def materialize_into(home: Settings, redis_url: str) -> Settings:
    """``home`` with its build's features copied into the Redis at ``redis_url`` (Feast's
    online store there): a SQLite build served from Redis without building again."""
    settings = home.model_copy(update={"redis_url": redis_url})
    # Feast copies the rows stamped within the window it is given: the build's own stamp.
    table = offline_file(settings.offline_dir, "user_behaviour")
    stamped = pq.read_table(table, columns=[EVENT_TIMESTAMP]).column(0)[0].as_py()
    apply_and_materialize(settings, as_of=stamped)
    return settings


def users_with_history(settings: Settings) -> list[str]:
    """Ids of users with interactions, in a fixed order: the model answers them personalised."""
    interactions = load_dataset(settings.data_dir).interactions
    return sorted(interactions["user_id"].unique().tolist())


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels`` (0 if none)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def readiness_pids(text: str) -> set[str]:
    """Pids of the live workers: each exports its dependency gauge (kept per process) from
    start-up on."""
    return {
        sample.labels["pid"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "recserve_dependency_up"
    }


def reach_every_worker(http: httpx.Client, workers: int, timeout: float = 30.0) -> None:
    """Send parallel /readyz requests on fresh connections until ``workers`` worker processes
    are live and exporting: the kernel hands each accept to whichever worker takes it, and on a
    busy machine one worker can take a long run of them. Fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=8) as pool:
        while True:
            list(pool.map(lambda _: http.get("/readyz"), range(16)))
            seen = readiness_pids(http.get("/metrics").text)
            if len(seen) >= workers:
                return
            assert time.monotonic() < deadline, f"requests reached only workers {seen}"


class PrivateRedis(PrivateServer):
    """A ``redis-server`` owned by one test: append-only with fsync on every write, so data
    survives a SIGKILL and a restart on the same port and directory."""

    executable = "redis-server"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        argv = [
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "yes", "--appendfsync", "always"),
            *("--dir", str(self.directory), "--daemonize", "no"),
        ]
        with redis.Redis.from_url(self.url, socket_timeout=1) as client:
            self._launch(argv, lambda: _answers_ping(client), "answer PING")

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open and nothing answers, as in a hang."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)


def _answers_ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    with owned_server(PrivateRedis, tmp_path / "redis") as server:
        yield server


@pytest.fixture(scope="session")
def two_worker_server(
    built_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """``recserve serve --workers 2`` on a copy of the built home (serve writes its metrics
    directory into the home)."""
    home = copy_home(built_home, tmp_path_factory.mktemp("two-workers") / "home")
    with serve(home.home, workers=2) as http:
        yield http
