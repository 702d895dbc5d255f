"""``recserve serve`` refuses to start, with a clear message, on a home it cannot serve."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from app.artifacts import CURRENT_POINTER, MODEL_FILE, current_version
from app.settings import Settings
from loadtests.server import free_port, recserve_argv
from tests.integration.conftest import copy_home

pytestmark = pytest.mark.integration


def _serve_until_exit(
    home: Path, workers: int, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``recserve serve``; a server that starts instead of exiting fails the timeout."""
    return subprocess.run(
        recserve_argv(free_port(), workers),
        env={**os.environ, "RECSERVE_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_truncated_current_model_is_refused(
    built_home: Settings, tmp_path: Path, workers: int
) -> None:
    settings = copy_home(built_home, tmp_path / "home")
    version = current_version(settings.model_root)
    assert version is not None
    model_dir = settings.model_root / version
    with (model_dir / MODEL_FILE).open("r+b") as model:
        model.truncate(100)

    result = _serve_until_exit(settings.home, workers)

    assert result.returncode != 0
    assert f"cannot load model from {model_dir}" in result.stderr
    assert "Uvicorn running" not in result.stderr  # refused before binding the port
    assert "Traceback" not in result.stderr


def test_home_without_a_model_says_to_build(built_home: Settings, tmp_path: Path) -> None:
    settings = copy_home(built_home, tmp_path / "home")
    (settings.model_root / CURRENT_POINTER).unlink()

    result = _serve_until_exit(settings.home, workers=1)

    assert result.returncode != 0
    assert f"no published model under {settings.model_root}" in result.stderr
    assert "run `recserve build" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECSERVE_AUTH__ENABLED": "true"}, "no API key is configured"),
        ({"RECSERVE_AUTH__KEYS_FILE": "/nonexistent/keys.toml"}, "keys file /nonexistent"),
    ],
)
def test_unusable_key_setup_is_refused(
    built_home: Settings, env: dict[str, str], message: str
) -> None:
    result = _serve_until_exit(built_home.home, workers=2, env=env)

    assert result.returncode != 0
    assert message in result.stderr
    assert "Uvicorn running" not in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_experiments_file_is_refused_naming_the_field(
    built_home: Settings, tmp_path: Path
) -> None:
    config = tmp_path / "experiments.toml"
    config.write_text(
        '[[experiments]]\nid = "ab"\ntraffic_share = 1.5\ncontrol = "a"\n'
        "min_detectable_effect = 0.1\n"
        '[[experiments.variants]]\nname = "a"\nweight = 1\nstrategy = { kind = "popular" }\n'
        '[[experiments.variants]]\nname = "b"\nweight = 1\nstrategy = { kind = "model" }\n'
    )

    result = _serve_until_exit(
        built_home.home, workers=2, env={"RECSERVE_EXPERIMENTS_FILE": str(config)}
    )

    assert result.returncode != 0
    assert f"error: {config}" in result.stderr
    assert "experiments[ab].traffic_share: Input should be less than or equal to 1" in result.stderr
    assert "Uvicorn running" not in result.stderr
    assert "Traceback" not in result.stderr
