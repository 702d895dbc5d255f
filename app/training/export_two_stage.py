"""Write a fitted two-stage model as a staged model directory (``app/artifacts.py``).

As for the hybrid (``export.py``): the graph and the data files are written, the graph is
loaded back by onnxruntime and compared with the numpy reference on probe users (the user
vector and the scores of the reference's candidates), then the ANN index is built and its
recall measured, and only then is ``manifest.json`` written. On any failure the whole
directory is removed.

Recall is measured on real users against exact search, at two points: the ANN search alone
(``ann_recall@N``: of the N items nearest the user vector, the share the index returns) and
the whole candidate stage (``candidate_recall@10``: of the exact top 10 over every item, by
the model's full score, the share the two-stage answer holds).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from app.artifacts import (
    ANN_INDEX_FILE,
    DEMOGRAPHIC_ITEMS_FILE,
    DEMOGRAPHIC_WEIGHTS_FILE,
    ITEM_VECTORS_FILE,
    ITEMS_FILE,
    MODEL_FILE,
    NEIGHBOUR_SCORES_FILE,
    NEIGHBOURS_FILE,
    OUTPUT_SCORES,
    OUTPUT_USER_VECTOR,
    POPULAR_FILE,
    POPULARITY_FILE,
    TOKENS_FILE,
    TWO_STAGE_MODEL_TYPE,
    ModelManifest,
    ParityReport,
    ParitySample,
)
from app.retrieval import (
    VectorIndex,
    ann_search,
    build_ann_index,
    open_ann_index,
    ranker_feeds,
)
from app.training.export import (
    RECORDED_PROBES,
    RECORDED_TOP,
    ManifestFacts,
    ParityError,
    Probe,
    make_probes,
    parity_session,
    save_graph,
    staging,
    write_extra_files,
    write_list,
    write_manifest,
)
from app.training.onnx_ranker import build_ranker_graph
from app.training.two_stage import ExactSearch, TwoStageRecommender

RECALL_K = 10


@dataclass(frozen=True)
class RecallReport:
    """Mean recall over the measured users, and the mean candidates scored per user."""

    users: int
    ann_recall: float
    candidate_recall: float
    candidates: float
    seconds: float

    def metrics(self, ann_count: int) -> dict[str, float]:
        return {
            f"ann_recall@{ann_count}": self.ann_recall,
            f"candidate_recall@{RECALL_K}": self.candidate_recall,
            "candidates_per_user": self.candidates,
        }


def export_two_stage(
    model: TwoStageRecommender,
    out_dir: Path,
    *,
    version: str,
    data_fingerprint: str,
    offline_metrics: dict[str, float],
    recall_users: Sequence[Probe],
    probes: Sequence[Probe] | None = None,
    relative_tolerance: float = 1e-4,
    extra_files: Mapping[str, bytes] | None = None,
    graph: onnx.ModelProto | None = None,
) -> tuple[ModelManifest, RecallReport]:
    """Write the staged directory ``out_dir`` (which must not exist or be empty); raises
    ``ParityError`` (and removes ``out_dir``) when the graph (default: ``model``'s) does not
    score like ``model``."""
    arrays = model.arrays()
    with staging(out_dir):
        weights = save_graph(graph or build_ranker_graph(model), out_dir / MODEL_FILE)
        write_list(out_dir / ITEMS_FILE, model.item_ids_)
        write_list(out_dir / TOKENS_FILE, model.tokens_)
        write_list(out_dir / POPULAR_FILE, [model.item_ids_[i] for i in arrays.popular])
        np.save(out_dir / ITEM_VECTORS_FILE, arrays.item_vectors)
        np.save(out_dir / POPULARITY_FILE, arrays.popularity)
        np.save(out_dir / NEIGHBOURS_FILE, arrays.neighbours)
        np.save(out_dir / NEIGHBOUR_SCORES_FILE, arrays.neighbour_scores)
        np.save(out_dir / DEMOGRAPHIC_ITEMS_FILE, arrays.demographic_items)
        np.save(out_dir / DEMOGRAPHIC_WEIGHTS_FILE, arrays.demographic_weights)
        exact = ExactSearch(arrays.item_vectors)
        if probes is None:
            probes = make_probes(model.n_items, model.n_tokens, model.params.history_max)
        parity = check_two_stage_parity(
            model, out_dir / MODEL_FILE, probes, exact, relative_tolerance
        )
        build_ann_index(arrays.item_vectors).save(str(out_dir / ANN_INDEX_FILE))
        recall = measure_recall(model, open_ann_index(out_dir / ANN_INDEX_FILE), recall_users)
        extra = write_extra_files(out_dir, extra_files)
    manifest = write_manifest(
        out_dir,
        model,
        ManifestFacts(TWO_STAGE_MODEL_TYPE, version, data_fingerprint, model.params.history_max),
        {**offline_metrics, **recall.metrics(model.params.retrieval.ann_candidates)},
        parity,
        [
            *weights,
            ITEM_VECTORS_FILE,
            POPULARITY_FILE,
            NEIGHBOURS_FILE,
            NEIGHBOUR_SCORES_FILE,
            DEMOGRAPHIC_ITEMS_FILE,
            DEMOGRAPHIC_WEIGHTS_FILE,
            ANN_INDEX_FILE,
            *extra,
        ],
    )
    return manifest, recall


def check_two_stage_parity(
    model: TwoStageRecommender,
    model_path: Path,
    probes: Sequence[Probe],
    exact: ExactSearch,
    relative_tolerance: float,
) -> ParityReport:
    """Score ``probes`` with the reference and with onnxruntime on ``model_path``, over the
    reference's candidates (exact search); raise ``ParityError`` on any difference in the
    user vectors or the scores beyond the tolerance."""
    session = parity_session(model_path, probes)
    arrays = model.arrays()
    retrieval = model.params.retrieval
    expected: list[np.ndarray] = []
    actual: list[np.ndarray] = []
    samples = []
    for number, probe in enumerate(probes):
        history = probe.history[-model.params.history_max :]
        items, scores = model.rank(history, probe.tokens, exact)
        feeds = ranker_feeds(arrays, retrieval, history, probe.tokens, model.n_tokens, items)
        onnx_scores, onnx_user = session.run([OUTPUT_SCORES, OUTPUT_USER_VECTOR], feeds)
        expected += [scores, model.user_vector(history, probe.tokens).astype(np.float64)]
        actual += [np.asarray(onnx_scores), np.asarray(onnx_user)]
        if number < RECORDED_PROBES and len(items):
            top = np.argsort(-scores, kind="stable")[:RECORDED_TOP]
            samples.append(
                ParitySample(
                    history=probe.history.tolist(),
                    tokens=probe.tokens.tolist(),
                    top_items=items[top].tolist(),
                    top_scores=scores[top].astype(float).tolist(),
                )
            )
    reference, onnx_values = np.concatenate(expected), np.concatenate(actual)
    max_abs_diff = float(np.max(np.abs(onnx_values - reference), initial=0.0))
    tolerance = relative_tolerance * max(float(np.max(np.abs(reference), initial=0.0)), 1e-6)
    if not max_abs_diff <= tolerance:  # also catches NaN
        raise ParityError(
            f"{model_path}: ONNX scores differ from the reference by {max_abs_diff:.3g} "
            f"(tolerance {tolerance:.3g}) over {len(probes)} probe users"
        )
    return ParityReport(
        probes=len(probes), max_abs_diff=max_abs_diff, tolerance=tolerance, samples=samples
    )


def measure_recall(
    model: TwoStageRecommender, index: VectorIndex, users: Sequence[Probe]
) -> RecallReport:
    """ANN and candidate-stage recall against exact search over ``users`` (real ones)."""
    started = time.perf_counter()
    exact = ExactSearch(model.arrays().item_vectors)
    count = model.params.retrieval.ann_candidates
    ann, stage, sizes = [], [], []
    for user in users:
        history = user.history[-model.params.history_max :]
        vector = model.user_vector(history, user.tokens)
        if np.any(vector):
            nearest = ann_search(exact, vector, count)
            ann.append(np.isin(nearest, ann_search(index, vector, count)).mean())
        scores = model.score_all(history, user.tokens, exact)
        scores[history] = -np.inf  # as the served answer: the history is never recommended
        best = np.argsort(-scores, kind="stable")[:RECALL_K]
        items, item_scores = model.rank(history, user.tokens, index)
        served = items[np.argsort(-item_scores, kind="stable")[:RECALL_K]]
        stage.append(np.isin(best, served).mean())
        sizes.append(len(items))
    return RecallReport(
        users=len(users),
        ann_recall=float(np.mean(ann)) if ann else 1.0,
        candidate_recall=float(np.mean(stage)) if stage else 1.0,
        candidates=float(np.mean(sizes)) if sizes else 0.0,
        seconds=time.perf_counter() - started,
    )
