"""A build with the rollout on: its model challenges the champion only after matching it on the
same validation data; otherwise the build is refused and the home stays as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.artifacts import ModelManifest, challenger_version, current_version, read_manifest
from app.batch.challenger import ChallengerRefused, check_challenger
from app.data.versions import read_history
from app.settings import RolloutSettings, Settings
from tests.integration.conftest import copy_home

METRIC = "validation_ndcg@10_warm"


def _with_rollout(settings: Settings, **rollout: object) -> Settings:
    config = RolloutSettings.model_validate({"enabled": True, **rollout})
    return settings.model_copy(update={"rollout": config})


def _champion(settings: Settings) -> ModelManifest:
    version = current_version(settings.model_root)
    assert version is not None
    return read_manifest(settings.model_root / version)


def _built(champion: ModelManifest, metric: float, **changes: object) -> ModelManifest:
    metrics = champion.offline_metrics | {METRIC: metric}
    return champion.model_copy(
        update={"version": "new-build", "offline_metrics": metrics, **changes}
    )


def test_without_the_rollout_or_a_champion_a_build_publishes_as_before(
    built_home: Settings, tmp_path: Path
) -> None:
    champion = _champion(built_home)
    assert check_challenger(built_home, _built(champion, 0.0)) is None
    empty = _with_rollout(Settings(home=tmp_path / "empty"))
    assert check_challenger(empty, _built(champion, 0.0)) is None


def test_the_challenger_must_match_the_champion_within_the_margin(built_home: Settings) -> None:
    champion = _champion(built_home)
    theirs = champion.offline_metrics[METRIC]
    gate = check_challenger(_with_rollout(built_home), _built(champion, theirs))
    assert gate is not None
    assert (gate.champion, gate.champion_metric, gate.challenger_metric) == (
        champion.version,
        theirs,
        theirs,
    )
    lenient = _with_rollout(built_home, validation_margin=0.02)
    assert check_challenger(lenient, _built(champion, theirs - 0.01)) is not None
    with pytest.raises(ChallengerRefused, match=f"does not match the champion {champion.version}"):
        check_challenger(lenient, _built(champion, theirs - 0.03))


def test_figures_of_different_validation_data_are_not_compared(built_home: Settings) -> None:
    champion = _champion(built_home)
    other_data = _built(champion, 1.0, data_fingerprint="sha256:" + "f" * 64)
    with pytest.raises(ChallengerRefused, match="validated on different data") as refusal:
        check_challenger(_with_rollout(built_home), other_data)
    assert "ON_DIFFERENT_VALIDATION_DATA=online_only" in str(refusal.value)
    online = _with_rollout(built_home, on_different_validation_data="online_only")
    gate = check_challenger(online, other_data)
    assert gate is not None
    assert gate.champion_metric is None


def test_a_metric_missing_from_a_manifest_is_named(built_home: Settings) -> None:
    settings = _with_rollout(built_home, validation_metric="validation_recall@50")
    with pytest.raises(ChallengerRefused, match="'validation_recall@50' is missing"):
        check_challenger(settings, _built(_champion(built_home), 1.0))


def test_a_build_during_a_rollout_is_refused(home: Settings) -> None:
    champion = _champion(home)
    (home.model_root / "CHALLENGER").write_text(champion.version + "\n")
    try:
        with pytest.raises(ChallengerRefused, match="is still challenging"):
            check_challenger(_with_rollout(home), _built(champion, 1.0))
    finally:
        (home.model_root / "CHALLENGER").unlink()


def test_a_build_publishes_its_model_as_the_challenger(
    built_home: Settings, shop_source: Path, tmp_path: Path
) -> None:
    from app.training.pipeline import build

    settings = _with_rollout(copy_home(built_home, tmp_path / "home"), validation_margin=1.0)
    champion = current_version(settings.model_root)
    result = build(settings, shop_source, tuning_budget_seconds=3)
    assert current_version(settings.model_root) == champion
    assert challenger_version(settings.model_root) == result.manifest.version
    assert (settings.model_root / result.manifest.version / "manifest.json").is_file()
    assert read_history(settings.versions_dir)[-1].message.endswith(f"challenging {champion}")
