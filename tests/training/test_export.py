"""ONNX export against real onnxruntime, read back through the serving loader."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from app.artifacts import (
    ITEMS_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    MODEL_WEIGHTS_FILE,
    POPULAR_FILE,
    TOKENS_FILE,
    read_json_list,
    read_manifest,
)
from app.serving.model.ranking import ModelLoadError, load_model
from app.training import export as export_module
from app.training.export import ParityError, Probe, export_graph, export_model, make_probes
from app.training.hybrid import HybridParams, HybridRecommender
from app.training.onnx_graph import build_graph
from app.training.types import TrainingData

pytestmark = pytest.mark.integration
EMPTY = np.empty(0, dtype=np.int64)


@pytest.fixture(scope="module")
def model(planted_data: TrainingData) -> HybridRecommender:
    # Every term switched on with weights of the same order, so parity covers all of them.
    params = HybridParams(
        content_beta=0.1,
        w_trans=0.5,
        w_seq=0.4,
        w_demo=0.3,
        w_pop=0.2,
        history_max=30,
        trans_last=4,
        seq_last=6,
    )
    return HybridRecommender(params).fit(planted_data)


def export(model: HybridRecommender, out_dir: Path, **kwargs: object) -> None:
    export_model(
        model,
        out_dir,
        version="v1",
        data_fingerprint="abc",
        offline_metrics={"ndcg@10": 0.5},
        **kwargs,  # type: ignore[arg-type]
    )


def test_onnx_scores_match_the_reference_for_every_kind_of_user(
    model: HybridRecommender, tmp_path: Path
) -> None:
    export(model, tmp_path / "v1")
    served = load_model(tmp_path / "v1")
    token_names = model.tokens_
    long_history = np.arange(45, dtype=np.int64)  # longer than history_max=30
    cases = [
        (EMPTY, EMPTY),
        (EMPTY, np.array([0, 2])),
        (np.array([7]), EMPTY),
        (np.array([3, 4, 5]), np.array([1])),
        (long_history, np.array([0, 1, 3])),
    ]
    for history, tokens in cases:
        expected = model.score([history], [tokens])[0]
        actual = served.score(history, [token_names[t] for t in tokens])
        assert actual.shape == (model.n_items,)
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
    # Cold users with attributes and warm users really get different scores.
    assert not np.allclose(served.score(EMPTY, []), served.score(EMPTY, [token_names[0]]))


def test_the_next_items_term_is_folded_into_the_item_item_matrix(
    model: HybridRecommender,
) -> None:
    """EASE + content and the next-items regression share the history's recency weights, so
    the graph holds one items x items matrix for both (plus the transitions), not two."""
    graph = build_graph(model)
    square = [
        t.name
        for t in graph.graph.initializer
        if list(t.dims) == [model.n_items + 1, model.n_items]
    ]
    assert sorted(square) == ["history_terms", "transitions"]
    matrices = model.matrices()
    folded = numpy_helper.to_array(
        next(t for t in graph.graph.initializer if t.name == "history_terms")
    )
    expected = model.params.w_ease * matrices.item_item + model.params.w_seq * matrices.sequential
    np.testing.assert_allclose(folded[:-1], expected, rtol=1e-5, atol=1e-7)
    assert not folded[-1].any()  # the padding row


def test_terms_with_their_own_decays_are_read_apart_and_score_like_the_reference(
    model: HybridRecommender, planted_data: TrainingData, tmp_path: Path
) -> None:
    """Whole history unweighted and max-normalised for EASE, a short decayed window for the
    regression: the graph keeps a matrix for each and still matches the reference."""
    params = replace(
        model.params, ease_decay=1.0, ease_window=30, ease_norm="max", seq_decay=0.6, seq_window=4
    )
    apart = HybridRecommender(params).fit(planted_data)
    graph = build_graph(apart)
    square = [
        t.name
        for t in graph.graph.initializer
        if list(t.dims) == [apart.n_items + 1, apart.n_items]
    ]
    assert sorted(square) == ["history_terms", "next_items", "transitions"]
    export(apart, tmp_path / "v1")
    served = load_model(tmp_path / "v1")
    assert served.manifest.history_max_items == 30
    for history in (EMPTY, np.array([7]), np.arange(45, dtype=np.int64)):
        expected = apart.score([history], [EMPTY])[0]
        np.testing.assert_allclose(served.score(history, []), expected, rtol=0, atol=1e-6)


def test_manifest_round_trips_and_files_follow_the_contract(
    model: HybridRecommender, tmp_path: Path
) -> None:
    out_dir = tmp_path / "v1"
    export(model, out_dir)
    manifest = read_manifest(out_dir)
    assert manifest.version == "v1"
    assert manifest.n_items == model.n_items == len(read_json_list(out_dir / ITEMS_FILE))
    assert manifest.n_tokens == model.n_tokens == len(read_json_list(out_dir / TOKENS_FILE))
    assert manifest.history_max_items == 30
    assert manifest.hyperparameters["content_beta"] == 0.1
    assert manifest.offline_metrics == {"ndcg@10": 0.5}
    assert manifest.parity.probes >= 64
    assert manifest.parity.max_abs_diff <= manifest.parity.tolerance
    popular = read_json_list(out_dir / POPULAR_FILE)
    assert set(popular[:3]) == {"c00", "c01", "c02"}  # everyone touches the planted c items


def test_large_initializers_are_shared_mappings_of_the_weights_file(
    model: HybridRecommender, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers map the weights file instead of each copying the matrices into its heap."""
    export(model, tmp_path / "small")  # the planted matrices are far under the threshold
    assert not (tmp_path / "small" / MODEL_WEIGHTS_FILE).exists()
    assert MODEL_WEIGHTS_FILE not in read_manifest(tmp_path / "small").artifacts

    monkeypatch.setattr(export_module, "SHARED_INITIALIZER_BYTES", 1024)
    out_dir = tmp_path / "v1"
    export(model, out_dir)

    assert MODEL_WEIGHTS_FILE in read_manifest(out_dir).artifacts
    graph = onnx.load(str(out_dir / MODEL_FILE), load_external_data=False)
    external = {t.name: t for t in graph.graph.initializer if t.external_data}
    assert {"history_terms", "transitions"} <= set(external)
    for tensor in external.values():
        info = {entry.key: entry.value for entry in tensor.external_data}
        assert info["location"] == MODEL_WEIGHTS_FILE
        assert int(info["offset"]) % export_module.WEIGHTS_ALIGNMENT == 0
        assert not tensor.raw_data
    served = load_model(out_dir)
    mapped = Path("/proc/self/maps").read_text()
    assert str((out_dir / MODEL_WEIGHTS_FILE).resolve()) in mapped
    history = np.array([3, 4, 5])
    np.testing.assert_allclose(
        served.score(history, []), model.score([history], [EMPTY])[0], rtol=0, atol=1e-6
    )


def test_a_truncated_weights_file_is_refused_at_load(
    model: HybridRecommender, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_module, "SHARED_INITIALIZER_BYTES", 1024)
    export(model, tmp_path / "v1")
    weights = tmp_path / "v1" / MODEL_WEIGHTS_FILE
    with weights.open("r+b") as data:
        data.truncate(weights.stat().st_size // 2)
    with pytest.raises(ModelLoadError, match="out of bounds"):
        load_model(tmp_path / "v1")


def test_probes_cover_empty_and_over_long_histories_with_and_without_tokens() -> None:
    probes = make_probes(n_items=100, n_tokens=5, history_max=30)
    lengths = {len(p.history) for p in probes}
    assert len(probes) >= 64
    assert {0, 1, 30, 50}.issubset(lengths)
    assert max(lengths) > 30
    assert {len(p.tokens) for p in probes} == {0, 1, 2, 3}


def test_corrupted_initializer_raises_and_leaves_nothing(
    model: HybridRecommender, tmp_path: Path
) -> None:
    graph = build_graph(model)
    weights = next(t for t in graph.graph.initializer if t.name == "history_terms")
    corrupted = numpy_helper.to_array(weights).copy()
    corrupted[:-1] *= 1.01
    weights.CopyFrom(numpy_helper.from_array(corrupted, "history_terms"))
    out_dir = tmp_path / "v1"
    with pytest.raises(ParityError, match="differ"):
        export_graph(
            model, graph, out_dir, version="v1", data_fingerprint="abc", offline_metrics={}
        )
    assert not out_dir.exists()


def test_refuses_a_non_empty_staging_directory(model: HybridRecommender, tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / MANIFEST_FILE).write_text("{}")
    with pytest.raises(FileExistsError):
        export(model, tmp_path / "v1")


def test_custom_probes_are_used(model: HybridRecommender, tmp_path: Path) -> None:
    export(model, tmp_path / "v1", probes=[Probe(np.array([1, 2]), EMPTY)])
    assert read_manifest(tmp_path / "v1").parity.probes == 1
