"""The validation gate a newly built model passes before it may challenge the champion.

With ``rollout.enabled`` and a published model (the champion), a build's model is published as
the challenger (``CHALLENGER``), not as ``CURRENT``, and only when its validation metric (the
manifest's ``offline_metrics[rollout.validation_metric]``) is at least the champion's minus
``rollout.validation_margin``. The two figures are comparable only when both models were
validated on the same data, which the manifests' ``data_fingerprint`` says; on different data
the build is refused, or (``on_different_validation_data = "online_only"``) the online test
alone decides. A refusal raises ``BuildRefused``: the data and model in use stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.artifacts import ModelManifest, challenger_version, current_version, read_manifest
from app.batch.gates import BuildRefused
from app.settings import Settings


class ChallengerRefused(BuildRefused):
    """The built model may not challenge the champion."""


@dataclass(frozen=True, slots=True)
class ChallengerGate:
    """Why the built model may challenge ``champion``: the two validation figures (None when
    they were not comparable and the online test alone decides)."""

    champion: str
    champion_metric: float | None
    challenger_metric: float | None


def check_challenger(settings: Settings, built: ModelManifest) -> ChallengerGate | None:
    """None when the build publishes as before (rollout off, or nothing published yet); the
    gate it passed otherwise. Raises ``ChallengerRefused`` naming both models and figures."""
    config = settings.rollout
    if not config.enabled:
        return None
    root = settings.model_root
    champion_version = current_version(root)
    if champion_version is None:
        return None
    running = challenger_version(root)
    if running is not None:
        raise ChallengerRefused(
            f"model {running} is still challenging {champion_version}: wait for the rollout's "
            "decision, or end it with `recserve rollout promote` or `recserve rollout rollback`"
        )
    champion = read_manifest(root / champion_version)
    name = config.validation_metric
    if champion.data_fingerprint != built.data_fingerprint:
        if config.on_different_validation_data == "online_only":
            return ChallengerGate(champion_version, None, None)
        raise ChallengerRefused(
            f"model {built.version} and the champion {champion_version} were validated on "
            f"different data ({built.data_fingerprint[:19]} vs {champion.data_fingerprint[:19]}): "
            f"their {name} figures are not comparable; build on the champion's data, or set "
            "RECSERVE_ROLLOUT__ON_DIFFERENT_VALIDATION_DATA=online_only to let the online test "
            "alone decide"
        )
    missing = [
        v
        for v, m in ((built.version, built), (champion_version, champion))
        if name not in m.offline_metrics
    ]
    if missing:
        raise ChallengerRefused(
            f"validation metric {name!r} is missing from the manifest of {', '.join(missing)}; "
            "set RECSERVE_ROLLOUT__VALIDATION_METRIC to one both manifests hold"
        )
    ours, theirs = built.offline_metrics[name], champion.offline_metrics[name]
    if ours < theirs - config.validation_margin:
        raise ChallengerRefused(
            f"model {built.version} does not match the champion {champion_version} on "
            f"validation: {name} {ours:.4f} < {theirs:.4f} - margin {config.validation_margin}"
        )
    return ChallengerGate(champion_version, theirs, ours)
