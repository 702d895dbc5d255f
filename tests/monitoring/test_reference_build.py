"""``recserve build`` publishes the drift reference beside the model, and serving reads it."""

from __future__ import annotations

import pytest

from app.artifacts import DRIFT_REFERENCE_FILE, current_version, read_manifest
from app.monitoring.drift import FEATURES
from app.monitoring.snapshot import load_snapshot
from app.settings import Settings

pytestmark = pytest.mark.integration


def test_the_build_writes_a_reference_serving_can_bin_with(built_home: Settings) -> None:
    version = current_version(built_home.model_root)
    assert version is not None
    model_dir = built_home.model_root / version
    assert DRIFT_REFERENCE_FILE in read_manifest(model_dir).artifacts
    snapshot = load_snapshot(model_dir)
    assert snapshot is not None
    reference = snapshot.reference
    assert set(reference.histograms) == set(FEATURES)
    for histogram in reference.histograms.values():
        assert sum(histogram.shares) == pytest.approx(1.0)
    assert len(reference.score_edges) == 9
    assert reference.score_edges == sorted(reference.score_edges)
    assert reference.categories  # the synthetic shop's items have categories
    assert snapshot.binner.category_labels[: len(reference.categories)] == tuple(
        reference.categories
    )
    # The reference window is the training data's newest fifth (the shop is small).
    assert reference.histograms["item_popularity"].observations == reference.window
