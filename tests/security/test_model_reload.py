"""Hot model reload through the ASGI app: a good version is swapped in, a corrupt or
mismatched one is refused while the old one keeps serving, and the poll finds new versions."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.artifacts import CATALOGUE_FILE, CURRENT_POINTER, MANIFEST_FILE, MODEL_FILE, publish
from app.settings import Settings
from tests.integration.conftest import copy_home, metric, serve

pytestmark = pytest.mark.integration

Manifest = dict[str, Any]


def publish_variant(
    settings: Settings,
    source: str,
    version: str,
    change: Callable[[Path, Manifest], None] | None = None,
) -> None:
    """Publish a copy of model ``source`` as ``version``, first passing its directory and
    manifest to ``change``."""
    root = settings.model_root
    staged = root / f".staged-{version}"
    shutil.copytree(root / source, staged)
    manifest = json.loads((staged / MANIFEST_FILE).read_text())
    manifest["version"] = version
    if change is not None:
        change(staged, manifest)
    (staged / MANIFEST_FILE).write_text(json.dumps(manifest))
    publish(root, staged, version)


def _truncate_graph(directory: Path, _manifest: Manifest) -> None:
    with (directory / MODEL_FILE).open("r+b") as graph:
        graph.truncate(100)


def _shift_reference_scores(_directory: Path, manifest: Manifest) -> None:
    sample = manifest["parity"]["samples"][0]
    sample["top_scores"] = [score + 1.0 for score in sample["top_scores"]]


def _need_unfetched_feature(_directory: Path, manifest: Manifest) -> None:
    manifest["feature_list"].append("user_behaviour:mood")


def _junk_catalogue(directory: Path, manifest: Manifest) -> None:
    assert CATALOGUE_FILE in manifest["artifacts"]
    (directory / CATALOGUE_FILE).write_text('[{"item_id": 1, "junk": true}]')


@pytest.fixture
def home(built_home: Settings, tmp_path: Path) -> Settings:
    return copy_home(built_home, tmp_path / "home")


@pytest.fixture
def client(home: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(home.model_copy(update={"model_poll_seconds": 0}))) as client:
        yield client


def _served_version(client: TestClient | httpx.Client) -> str:
    version: str = client.get("/recommend", params={"user_id": "u", "k": 1}).json()["model_version"]
    return version


def test_published_version_is_swapped_in(home: Settings, client: TestClient) -> None:
    old = _served_version(client)
    publish_variant(home, old, "v-next")

    response = client.post("/admin/models/reload")

    assert response.status_code == 200
    assert response.json() == {"outcome": "loaded", "version": "v-next", "previous_version": old}
    assert _served_version(client) == "v-next"
    assert client.get("/readyz").json()["model_version"] == "v-next"
    text = client.get("/metrics").text
    assert metric(text, "recserve_model_info", version="v-next") == 1
    assert metric(text, "recserve_model_info", version=old) == 0
    assert client.post("/admin/models/reload").json()["outcome"] == "unchanged"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_truncate_graph, "cannot load model from"),
        (_shift_reference_scores, "parity probe 0 differs from the recorded reference"),
        (_need_unfetched_feature, "reads features the service does not fetch"),
        (_junk_catalogue, "cannot load the item catalogue"),
    ],
)
def test_bad_version_is_refused_and_the_old_one_keeps_serving(
    home: Settings,
    client: TestClient,
    change: Callable[[Path, Manifest], None],
    reason: str,
) -> None:
    old = _served_version(client)
    refused_before = _refused(client)
    publish_variant(home, old, "v-bad", change)

    response = client.post("/admin/models/reload")

    assert response.status_code == 409
    body = response.json()
    assert reason in body["message"]
    assert body["error"] == "conflict"
    assert (body["refused_version"], body["serving_version"]) == ("v-bad", old)
    assert _served_version(client) == old
    ready = client.get("/readyz").json()
    assert (ready["ready"], ready["degraded"], ready["model_version"]) == (True, True, old)
    assert ready["dependencies"]["published_model"]["ok"] is False
    assert reason in ready["dependencies"]["published_model"]["detail"]
    assert _refused(client) == refused_before + 1

    publish_variant(home, old, "v-fixed")  # recovery: the next good version is taken
    assert client.post("/admin/models/reload").json()["version"] == "v-fixed"
    assert client.get("/readyz").json()["degraded"] is False


def test_poll_loads_new_versions_and_refuses_bad_ones_once(home: Settings) -> None:
    settings = home.model_copy(update={"model_poll_seconds": 0.1})
    with TestClient(create_app(settings)) as client:
        refused_before = _refused(client)
        old = _served_version(client)
        publish_variant(home, old, "v-bad", _truncate_graph)
        _wait_until(
            lambda: not client.get("/readyz").json()["dependencies"]["published_model"]["ok"]
        )
        time.sleep(0.5)  # several polls: the known-bad version is not reloaded and re-counted
        assert _refused(client) == refused_before + 1

        publish_variant(home, old, "v-polled")
        _wait_until(lambda: _served_version(client) == "v-polled")
        assert client.get("/readyz").json()["degraded"] is False


def _wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _refused(client: TestClient | httpx.Client) -> float:
    return metric(client.get("/metrics").text, "recserve_model_reloads_total", outcome="refused")


def test_each_worker_of_a_running_server_polls_refuses_and_recovers(home: Settings) -> None:
    """Two uvicorn workers, each polling CURRENT on its own: a corrupt model is refused once
    per worker while every request keeps being answered by the old one; a good model then
    replaces it in both."""
    with serve(home.home, workers=2, extra_env={"RECSERVE_MODEL_POLL_SECONDS": "0.2"}) as http:
        old = _served_version(http)
        refused_before = _refused(http)  # a delta: earlier servers' samples may be summed in
        publish_variant(home, old, "v-corrupt", _truncate_graph)

        _wait_until(lambda: _refused(http) == refused_before + 2)  # summed over both workers
        for _ in range(20):
            assert _served_version(http) == old
        ready = http.get("/readyz").json()
        assert (ready["degraded"], ready["dependencies"]["published_model"]["ok"]) == (True, False)
        time.sleep(0.6)  # more polls: a version already refused is not loaded again
        assert _refused(http) == refused_before + 2

        publish_variant(home, old, "v-good")
        _wait_until(lambda: all(_served_version(http) == "v-good" for _ in range(20)))
        assert http.get("/readyz").json()["degraded"] is False


@pytest.mark.parametrize("target", ["../outside", "/tmp", "nested/version", "..", "link-out"])
def test_a_pointer_out_of_the_models_directory_is_refused(
    home: Settings, client: TestClient, tmp_path: Path, target: str
) -> None:
    old = _served_version(client)
    outside = tmp_path / "outside"
    shutil.copytree(home.model_root / old, outside)  # a loadable model, but not published here
    (home.model_root / "link-out").symlink_to(outside, target_is_directory=True)
    (home.model_root / CURRENT_POINTER).write_text(target + "\n")

    response = client.post("/admin/models/reload")

    assert response.status_code == 409
    assert "not a version directory inside" in response.json()["message"]
    assert _served_version(client) == old
