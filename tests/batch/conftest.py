"""A built home per test module and the means to tell whether it still serves the same."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.artifacts import current_version
from app.cli import served_top_k
from app.data.versions import current_record
from app.settings import Settings

PROBE_USERS = 25


@dataclass(frozen=True)
class HomeState:
    """What a home serves and holds: compared before and after a run that must change nothing."""

    files: dict[str, str]
    model: str | None
    data_version: int | None
    answers: list[list[str]]


def home_state(settings: Settings) -> HomeState:
    """Digests of every data and offline file, the model in use, the data version and the
    engine's answers (online features included) for the first users with a history."""
    files = {
        str(path.relative_to(settings.home)): hashlib.sha256(path.read_bytes()).hexdigest()
        for directory in (settings.data_dir, settings.offline_dir)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
    record = current_record(settings.versions_dir)
    return HomeState(
        files=files,
        model=current_version(settings.model_root),
        data_version=None if record is None else record.data_version,
        answers=[answer.items for answer in served_top_k(settings, probe_users(settings), 10)],
    )


def probe_users(settings: Settings) -> list[str]:
    import pandas as pd

    behaviour = pd.read_parquet(
        settings.offline_dir / "user_behaviour.parquet", columns=["user_id"]
    )
    return sorted(behaviour["user_id"].astype(str))[:PROBE_USERS]


def run_cli(home: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``recserve --home HOME ARGS`` in a subprocess, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSERVE_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--home", str(home), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def versioned_home(built_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A private copy of the session's built home (data version 1)."""
    target = tmp_path_factory.mktemp("versioned") / "home"
    shutil.copytree(built_home.home, target)
    return Settings(home=target)


def copy_source(source: Path, destination: Path) -> Path:
    """A copy of the atomic dataset ``source`` named like it, to be edited by a test."""
    shutil.copytree(source, destination)
    return destination
