"""Scoring with onnxruntime: load a published model directory and score one user per call.

The model graph does all the maths (recency weights, item-item and demographic terms); this
module only maps item ids and attribute tokens to indices and runs one session reused for the
life of the process. A two-stage model (large catalogues) scores only its candidates
(``two_stage.py``); ``score_candidates`` serves both families.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np
import onnxruntime as ort

from app.artifacts import (
    EXPLAIN_TERM_OUTPUTS,
    INPUT_CANDIDATE_FEATURES,
    INPUT_CANDIDATE_VECTORS,
    INPUT_HISTORY,
    INPUT_HISTORY_VECTORS,
    INPUT_USER_TOKENS,
    ITEMS_FILE,
    MODEL_FILE,
    NEIGHBOUR_SCORES_FILE,
    NEIGHBOURS_FILE,
    OUTPUT_POPULARITY,
    OUTPUT_SCORES,
    OUTPUT_USER_VECTOR,
    POPULAR_FILE,
    TOKENS_FILE,
    TWO_STAGE_MODEL_TYPE,
    ModelManifest,
    read_json_list,
    read_manifest,
)
from app.serving.model.repeat_index import RepeatIndex, load_repeat_index
from app.serving.model.two_stage import TwoStageRanker, load_ranker


class ModelLoadError(RuntimeError):
    """A model directory is missing, corrupt, or disagrees with its manifest."""


class NotExplainableError(RuntimeError):
    """The served model was exported before its graph had the explanation outputs."""


# Per model family (two-stage or not): the graph's inputs and the outputs serving reads.
GRAPH_SIGNATURES = {
    False: ({INPUT_HISTORY, INPUT_USER_TOKENS}, {OUTPUT_SCORES}),
    True: (
        {
            INPUT_HISTORY_VECTORS,
            INPUT_USER_TOKENS,
            INPUT_CANDIDATE_VECTORS,
            INPUT_CANDIDATE_FEATURES,
        },
        {OUTPUT_SCORES, OUTPUT_USER_VECTOR},
    ),
}
EXPLAIN_OUTPUTS = (
    OUTPUT_POPULARITY,
    *(name for _, weights, rows in EXPLAIN_TERM_OUTPUTS.values() for name in (weights, rows)),
)


@dataclass(frozen=True)
class ScoreTerm:
    """One additive term of the score, ``weights @ rows`` ([n_items]). ``slots`` holds the item
    (or token) index each row was gathered for; the padding index has weight 0."""

    slots: np.ndarray
    weights: np.ndarray
    rows: np.ndarray


@dataclass(frozen=True)
class ScoreBreakdown:
    """``scores == Σ terms[name].weights @ terms[name].rows + popularity`` (float32 sums)."""

    terms: dict[str, ScoreTerm]
    popularity: np.ndarray


@dataclass(frozen=True)
class NeighbourIndex:
    """Each item's related items precomputed at export: ``indices`` int32 and ``scores``
    float32, both [n_items, M], best first, ``-1`` padded. Memory-mapped read-only, so
    every worker process shares the same pages."""

    indices: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class LoadedModel:
    """A model version held in memory: the session plus the id <-> index maps it needs."""

    manifest: ModelManifest
    session: ort.InferenceSession
    item_ids: tuple[str, ...]
    item_index: dict[str, int]
    token_index: dict[str, int]
    popular: tuple[str, ...]
    neighbours: NeighbourIndex | None = None
    explainable: bool = False  # the graph's outputs are the scores and the EXPLAIN_OUTPUTS
    ranker: TwoStageRanker | None = None  # a two-stage model: scores candidates only
    repeats: RepeatIndex | None = None  # the repeat model, when the build kept repeats on

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def item_indices(self, item_ids: Sequence[str]) -> np.ndarray:
        """Indices of the known ids, order kept; ids the model has never seen are skipped."""
        # dict.get mapped in C, then a mask: about half the cost of a filtering generator.
        found = map(self.item_index.get, item_ids, repeat(-1))
        indices = np.fromiter(found, dtype=np.int64, count=len(item_ids))
        return indices[indices >= 0]

    def score(self, history: np.ndarray, tokens: Sequence[str]) -> np.ndarray:
        """Scores for every item. ``history`` is item indices oldest -> newest. A two-stage
        model scores its candidates only: every other item is ``-inf``."""
        items, scores = self.score_candidates(history, tokens)
        if items is None:
            return scores
        full = np.full(self.n_items, -np.inf, dtype=np.float32)
        full[items] = scores
        return full

    def score_candidates(
        self, history: np.ndarray, tokens: Sequence[str]
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """``(items, scores)``: the two-stage model's candidates (item indices, never a
        history item) and their scores, or ``None`` and a score for every item."""
        if self.ranker is not None:
            return self.ranker.rank(history, self._token_indices(tokens))
        (scores,) = self.session.run([OUTPUT_SCORES], self._feeds(history, tokens))
        return None, np.asarray(scores)

    def score_items(
        self, history: np.ndarray, tokens: Sequence[str], items: np.ndarray
    ) -> np.ndarray:
        """Scores of the given item indices, in their order, candidates or not."""
        if self.ranker is None:
            return self.score(history, tokens)[items]
        order = np.argsort(items, kind="stable")
        scores = np.empty(len(items), dtype=np.float32)
        scores[order] = self.ranker.score_items(history, self._token_indices(tokens), items[order])
        return scores

    def score_breakdown(self, history: np.ndarray, tokens: Sequence[str]) -> ScoreBreakdown:
        """What ``score`` sums, term by term: a second, explain-only run of the graph."""
        if not self.explainable:
            raise NotExplainableError(
                f"model {self.version} has no explanation outputs this version reads "
                "(exported by an older one: rebuild it to explain its answers)"
            )
        feeds = self._feeds(history, tokens)
        popularity, *term_outputs = self.session.run(list(EXPLAIN_OUTPUTS), feeds)
        terms = {}
        for position, (name, (input_name, _, _)) in enumerate(EXPLAIN_TERM_OUTPUTS.items()):
            weights, rows = term_outputs[2 * position], term_outputs[2 * position + 1]
            # A term reads the last len(weights) elements of its input, so they line up.
            slots = feeds[input_name][len(feeds[input_name]) - len(weights) :]
            terms[name] = ScoreTerm(slots, np.asarray(weights), np.asarray(rows))
        return ScoreBreakdown(terms, np.asarray(popularity))

    def _feeds(self, history: np.ndarray, tokens: Sequence[str]) -> dict[str, np.ndarray]:
        hist = history[-self.manifest.history_max_items :]
        # The padding slot goes first so it never shifts the recency of real items.
        hist_in = np.concatenate(([self.n_items], hist)).astype(np.int64)
        tok_in = np.concatenate(([self.manifest.n_tokens], self._token_indices(tokens)))
        return {INPUT_HISTORY: hist_in, INPUT_USER_TOKENS: tok_in.astype(np.int64)}

    def _token_indices(self, tokens: Sequence[str]) -> np.ndarray:
        tok_index = self.token_index
        return np.array([tok_index[t] for t in tokens if t in tok_index], dtype=np.int64)


def _session(model_path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # One thread per call: uvicorn workers already use every core; intra-op threads would
    # fight them and add wake-up latency for these small graphs.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )


def load_model(model_dir: Path) -> LoadedModel:
    """Load and check a model directory; raises ``ModelLoadError`` with the reason."""
    try:
        manifest = read_manifest(model_dir)
        item_ids = read_json_list(model_dir / ITEMS_FILE)
        tokens = read_json_list(model_dir / TOKENS_FILE)
        popular = read_json_list(model_dir / POPULAR_FILE)
        session = _session(model_dir / MODEL_FILE)
    except Exception as exc:  # any failure to read is the same failure to the caller
        raise ModelLoadError(f"cannot load model from {model_dir}: {exc}") from exc
    if len(item_ids) != manifest.n_items or len(tokens) != manifest.n_tokens:
        raise ModelLoadError(
            f"{model_dir}: manifest says {manifest.n_items} items/{manifest.n_tokens} tokens, "
            f"files hold {len(item_ids)}/{len(tokens)}"
        )
    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    two_stage = manifest.model_type == TWO_STAGE_MODEL_TYPE
    expected_inputs, expected_outputs = GRAPH_SIGNATURES[two_stage]
    if inputs != expected_inputs or not outputs.issuperset(expected_outputs):
        raise ModelLoadError(f"{model_dir}: graph inputs {inputs}, outputs {outputs} unexpected")
    item_index = {item: i for i, item in enumerate(item_ids)}
    ranker = None
    if two_stage:
        popular_indices = np.array([item_index[p] for p in popular if p in item_index])
        try:
            ranker = load_ranker(model_dir, manifest, session, popular_indices.astype(np.int64))
        except Exception as exc:  # any unreadable or mismatched file is the same refusal
            raise ModelLoadError(f"{model_dir}: cannot load the two-stage arrays: {exc}") from exc
    try:
        repeats = load_repeat_index(model_dir, manifest)
    except Exception as exc:  # unreadable or mismatched repeat files: the same refusal
        raise ModelLoadError(f"{model_dir}: cannot load the repeat model: {exc}") from exc
    model = LoadedModel(
        manifest=manifest,
        session=session,
        item_ids=tuple(item_ids),
        item_index=item_index,
        token_index={tok: i for i, tok in enumerate(tokens)},
        popular=tuple(p for p in popular if p in item_index),
        neighbours=_load_neighbours(model_dir, manifest),
        explainable=outputs == {OUTPUT_SCORES, *EXPLAIN_OUTPUTS},
        ranker=ranker,
        repeats=repeats,
    )
    _probe(model, model_dir)
    return model


def _load_neighbours(model_dir: Path, manifest: ModelManifest) -> NeighbourIndex | None:
    """The neighbour index when the manifest lists it (older models do not: ``None``)."""
    if NEIGHBOURS_FILE not in manifest.artifacts:
        return None
    try:
        indices = np.load(model_dir / NEIGHBOURS_FILE, mmap_mode="r")
        scores = np.load(model_dir / NEIGHBOUR_SCORES_FILE, mmap_mode="r")
    except Exception as exc:
        raise ModelLoadError(f"{model_dir}: cannot load the neighbour index: {exc}") from exc
    if (
        indices.ndim != 2
        or indices.shape[0] != manifest.n_items
        or scores.shape != indices.shape
        or indices.dtype != np.int32
        or scores.dtype != np.float32
        or (indices.size and (indices.min() < -1 or indices.max() >= manifest.n_items))
    ):
        raise ModelLoadError(
            f"{model_dir}: neighbour index {indices.dtype}{indices.shape} / "
            f"{scores.dtype}{scores.shape} does not fit {manifest.n_items} items"
        )
    return NeighbourIndex(indices=indices, scores=scores)


def _probe(model: LoadedModel, model_dir: Path) -> None:
    """One scoring call at load time, so a graph that loads but cannot run is refused."""
    try:
        history = np.arange(min(3, model.n_items), dtype=np.int64)
        items, scores = model.score_candidates(history, ())
    except Exception as exc:
        raise ModelLoadError(f"{model_dir}: probe scoring failed: {exc}") from exc
    shape = (model.n_items,) if items is None else items.shape
    if scores.shape != shape or not np.isfinite(scores).all():
        raise ModelLoadError(f"{model_dir}: probe scores have shape {scores.shape} or NaNs")
    _check_recorded_parity(model, model_dir)


# Slack over the export's own tolerance: the same graph, but maybe another CPU or thread count.
PARITY_SLACK = 2.0


def _check_recorded_parity(model: LoadedModel, model_dir: Path) -> None:
    """Re-score the probes whose reference scores the export recorded (older models have
    none): a graph that no longer matches its training code is refused."""
    parity = model.manifest.parity
    token_names = list(model.token_index)  # index order
    for number, sample in enumerate(parity.samples):
        try:
            tokens = [token_names[t] for t in sample.tokens]
            history = np.asarray(sample.history, dtype=np.int64)
            top_items = np.asarray(sample.top_items, dtype=np.int64)
            scores = model.score_items(history, tokens, top_items)
            diff = float(np.max(np.abs(scores - sample.top_scores)))
        except Exception as exc:  # indices out of range for this graph, or a failing run
            raise ModelLoadError(f"{model_dir}: parity probe {number} failed: {exc}") from exc
        if not diff <= PARITY_SLACK * parity.tolerance:  # also catches NaN
            raise ModelLoadError(
                f"{model_dir}: parity probe {number} differs from the recorded reference by "
                f"{diff:.3g} (tolerance {PARITY_SLACK * parity.tolerance:.3g})"
            )
