"""``recserve rollout status|promote|rollback`` on a home with a challenger, no server running:
the operator's decision moves the pointers, is recorded once and refuses a second time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.artifacts import (
    MANIFEST_FILE,
    challenger_version,
    current_version,
    point_challenger,
    read_manifest,
)
from app.cli import main
from app.rollout.store import open_rollout_store
from app.settings import Settings
from tests.integration.conftest import copy_home


@pytest.fixture
def rollout_home(
    built_home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Settings, str, str]:
    """A home whose champion is challenged by a second published version."""
    settings = copy_home(built_home, tmp_path / "home")
    monkeypatch.setenv("RECSERVE_HOME", str(settings.home))
    models = settings.model_root
    champion = current_version(models)
    assert champion is not None
    challenger = f"{champion}-next"
    shutil.copytree(models / champion, models / challenger)
    manifest = read_manifest(models / challenger).model_copy(update={"version": challenger})
    (models / challenger / MANIFEST_FILE).write_text(manifest.model_dump_json())
    point_challenger(models, challenger)
    return settings, champion, challenger


def test_promote_makes_the_challenger_the_champion(
    rollout_home: tuple[Settings, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, champion, challenger = rollout_home
    assert main(["rollout", "status"]) == 0
    assert f"challenger: {challenger}" in capsys.readouterr().out
    assert main(["rollout", "promote"]) == 0
    assert f"promotion: {champion} -> {challenger}" in capsys.readouterr().out
    assert current_version(settings.model_root) == challenger
    assert challenger_version(settings.model_root) is None
    store = open_rollout_store(settings)
    (rollout,) = store.rollouts(5)
    assert (rollout.status, rollout.decided_by) == ("promoted", "operator")
    assert [c.change_id for c in store.changes(5)] == [f"promotion-{challenger}"]
    assert main(["rollout", "status"]) == 0
    out = capsys.readouterr().out
    assert "challenger: -" in out
    assert f"{challenger} vs {champion}: promoted by the operator" in out
    assert main(["rollout", "rollback"]) == 2
    assert "no challenger is being rolled out" in capsys.readouterr().err


def test_rollback_leaves_the_champion_serving_everyone(
    rollout_home: tuple[Settings, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, champion, challenger = rollout_home
    assert main(["rollout", "rollback"]) == 0
    assert f"rollback: {challenger} -> {champion}" in capsys.readouterr().out
    assert current_version(settings.model_root) == champion
    assert challenger_version(settings.model_root) is None
    (change,) = open_rollout_store(settings).changes(5)
    assert (change.kind, change.from_version, change.to_version) == (
        "rollback",
        challenger,
        champion,
    )
