"""Write a fitted hybrid as a staged model directory (``app/artifacts.py``) and prove the ONNX
graph scores like the numpy reference before anything publishable exists.

Order matters: the data files and graph are written, the graph is loaded back by
onnxruntime and compared with ``HybridRecommender.score`` on probe users, the item neighbour
index (``app/training/neighbours.py``) is written, and only then is ``manifest.json``
written. On any failure the whole directory is removed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
import onnxruntime as ort
from onnx import external_data_helper

from app.artifacts import (
    INPUT_HISTORY,
    INPUT_USER_TOKENS,
    ITEMS_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    MODEL_WEIGHTS_FILE,
    NEIGHBOUR_SCORES_FILE,
    NEIGHBOURS_FILE,
    OUTPUT_SCORES,
    POPULAR_FILE,
    TOKENS_FILE,
    ModelManifest,
    ParityReport,
    ParitySample,
)
from app.features.schema import (
    HISTORY_MAX_ITEMS,
    USER_ATTRIBUTES_VIEW,
    USER_BEHAVIOUR_VIEW,
)
from app.training.hybrid import HybridRecommender
from app.training.neighbours import model_neighbours
from app.training.onnx_graph import build_graph

MODEL_TYPE = "hybrid_ease_transitions_demographic"
FEATURE_LIST = (f"{USER_BEHAVIOUR_VIEW}:history_items", f"{USER_ATTRIBUTES_VIEW}:attribute_tokens")
DEFAULT_PROBES = 64
# Probes whose reference top scores the manifest keeps, for serving to re-check at load.
RECORDED_PROBES = 4
RECORDED_TOP = 10
# Initializers this large are written to MODEL_WEIGHTS_FILE, which onnxruntime memory-maps:
# every worker serving the version then shares one copy in the page cache (the dense hybrid's
# matrices: 4 n² bytes each) instead of holding a private one, and no graph outgrows
# protobuf's 2 GB limit.
SHARED_INITIALIZER_BYTES = 1 << 20
# Each one starts on a boundary that is a page on every platform (64 KiB: Windows' mapping
# granularity; a multiple of Linux's 4 KiB).
WEIGHTS_ALIGNMENT = 64 * 1024


class ParityError(RuntimeError):
    """The ONNX graph and the numpy reference disagree; nothing was left to publish."""


@dataclass(frozen=True)
class Probe:
    """One user to score in the parity check: item and token indices, no padding."""

    history: np.ndarray
    tokens: np.ndarray


def export_model(
    model: HybridRecommender,
    out_dir: Path,
    *,
    version: str,
    data_fingerprint: str,
    offline_metrics: dict[str, float],
    probes: Sequence[Probe] | None = None,
    relative_tolerance: float = 1e-4,
    extra_files: Mapping[str, bytes] | None = None,
) -> ModelManifest:
    """Build the graph of ``model`` and write the staged directory ``out_dir``.

    ``extra_files`` (name -> content, e.g. the item catalogue) are written beside the model and
    listed in the manifest's ``artifacts``.

    ``out_dir`` must not exist or be empty. ``probes`` default to ``make_probes`` (64 users
    with empty, short, long and over-long histories, with and without tokens). Raises
    ``ParityError`` (and removes ``out_dir``) when any score differs by more than
    ``relative_tolerance`` times the largest reference score.
    """
    return export_graph(
        model,
        build_graph(model),
        out_dir,
        version=version,
        data_fingerprint=data_fingerprint,
        offline_metrics=offline_metrics,
        probes=probes,
        relative_tolerance=relative_tolerance,
        extra_files=extra_files,
    )


def export_graph(
    model: HybridRecommender,
    graph: onnx.ModelProto,
    out_dir: Path,
    *,
    version: str,
    data_fingerprint: str,
    offline_metrics: dict[str, float],
    probes: Sequence[Probe] | None = None,
    relative_tolerance: float = 1e-4,
    extra_files: Mapping[str, bytes] | None = None,
) -> ModelManifest:
    """``export_model`` with a given graph, which must score exactly like ``model``."""
    if model.popular_items_ is None:
        raise RuntimeError("HybridRecommender is not fitted; call fit() first")
    with staging(out_dir):
        weights = save_graph(graph, out_dir / MODEL_FILE)
        write_list(out_dir / ITEMS_FILE, model.item_ids_)
        write_list(out_dir / TOKENS_FILE, model.tokens_)
        write_list(out_dir / POPULAR_FILE, [model.item_ids_[i] for i in model.popular_items_])
        if probes is None:
            probes = make_probes(model.n_items, model.n_tokens, model.params.history_max)
        parity = check_parity(model, out_dir / MODEL_FILE, probes, relative_tolerance)
        neighbours, neighbour_scores = model_neighbours(model)
        np.save(out_dir / NEIGHBOURS_FILE, neighbours)
        np.save(out_dir / NEIGHBOUR_SCORES_FILE, neighbour_scores)
        extra = write_extra_files(out_dir, extra_files)
    manifest = write_manifest(
        out_dir,
        model,
        ManifestFacts(MODEL_TYPE, version, data_fingerprint, model.params.read_items),
        offline_metrics,
        parity,
        [*weights, NEIGHBOURS_FILE, NEIGHBOUR_SCORES_FILE, *extra],
    )
    return manifest


@contextmanager
def staging(out_dir: Path) -> Iterator[None]:
    """Write into ``out_dir``, which must not exist or be empty; on any failure inside the
    block the whole directory is removed, so nothing half-written can be published."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: staging directory is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise


def write_extra_files(out_dir: Path, extra_files: Mapping[str, bytes] | None) -> list[str]:
    """Write the caller's extra files beside the model; their names, for the manifest."""
    for name, content in (extra_files or {}).items():
        (out_dir / name).write_bytes(content)
    return list(extra_files or {})


class _Params(Protocol):
    """Hyperparameters, recorded verbatim."""

    def as_dict(self) -> dict[str, Any]: ...


class ExportedModel(Protocol):
    """What a manifest records of either model family."""

    @property
    def n_items(self) -> int: ...

    @property
    def n_tokens(self) -> int: ...

    @property
    def params(self) -> _Params: ...


@dataclass(frozen=True)
class ManifestFacts:
    """The manifest fields that differ by model family and build."""

    model_type: str
    version: str
    data_fingerprint: str
    history_max_items: int


def write_manifest(
    out_dir: Path,
    model: ExportedModel,
    facts: ManifestFacts,
    offline_metrics: dict[str, float],
    parity: ParityReport,
    artifacts: list[str],
) -> ModelManifest:
    """The model's manifest, written last: a directory with a manifest is complete."""
    manifest = ModelManifest(
        version=facts.version,
        model_type=facts.model_type,
        trained_at=datetime.now(UTC),
        data_fingerprint=facts.data_fingerprint,
        n_items=model.n_items,
        n_tokens=model.n_tokens,
        history_max_items=facts.history_max_items,
        feature_list=list(FEATURE_LIST),
        hyperparameters=model.params.as_dict(),
        offline_metrics=offline_metrics,
        parity=parity,
        artifacts=artifacts,
    )
    (out_dir / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n")
    return manifest


def check_parity(
    model: HybridRecommender,
    model_path: Path,
    probes: Sequence[Probe],
    relative_tolerance: float,
) -> ParityReport:
    """Score ``probes`` with ``model`` and with onnxruntime on ``model_path``; raise
    ``ParityError`` when they differ by more than the tolerance."""
    session = parity_session(model_path, probes)
    history_max = model.params.read_items
    expected = model.score([p.history for p in probes], [p.tokens for p in probes])
    actual = np.stack(
        [
            session.run(
                [OUTPUT_SCORES],
                {
                    # The same padding serving adds: one slot in front of each input.
                    INPUT_HISTORY: _front_padded(p.history[-history_max:], model.n_items),
                    INPUT_USER_TOKENS: _front_padded(p.tokens, model.n_tokens),
                },
            )[0]
            for p in probes
        ]
    )
    max_abs_diff = float(np.max(np.abs(actual - expected)))
    tolerance = relative_tolerance * max(float(np.max(np.abs(expected))), 1e-6)
    if not max_abs_diff <= tolerance:  # also catches NaN
        raise ParityError(
            f"{model_path}: ONNX scores differ from the reference by {max_abs_diff:.3g} "
            f"(tolerance {tolerance:.3g}) over {len(probes)} probe users"
        )
    return ParityReport(
        probes=len(probes),
        max_abs_diff=max_abs_diff,
        tolerance=tolerance,
        samples=_recorded_samples(probes, expected),
    )


def parity_session(model_path: Path, probes: Sequence[Probe]) -> ort.InferenceSession:
    """An onnxruntime session on the exported graph, one thread as in serving; raises
    ``ValueError`` without probes to check it with."""
    if not probes:
        raise ValueError("parity check needs at least one probe")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )


def _recorded_samples(probes: Sequence[Probe], expected: np.ndarray) -> list[ParitySample]:
    samples = []
    for probe, scores in zip(probes[:RECORDED_PROBES], expected, strict=False):
        top = np.argsort(-scores, kind="stable")[:RECORDED_TOP]
        samples.append(
            ParitySample(
                history=probe.history.tolist(),
                tokens=probe.tokens.tolist(),
                top_items=top.tolist(),
                top_scores=scores[top].astype(float).tolist(),
            )
        )
    return samples


def make_probes(
    n_items: int,
    n_tokens: int,
    history_max: int = HISTORY_MAX_ITEMS,
    *,
    count: int = DEFAULT_PROBES,
    seed: int = 0,
) -> list[Probe]:
    """Probe users cycling through history lengths (empty, 1, 2, ~10, 50, ``history_max``,
    and longer, which the reference must cap like serving does) and token counts (0-3)."""
    rng = np.random.default_rng(seed)
    lengths = (0, 1, 2, 9, 10, 11, 50, history_max, history_max + 20)
    probes = []
    for k in range(count):
        length = min(lengths[k % len(lengths)], n_items)
        n_user_tokens = min((k // len(lengths)) % 4, n_tokens)
        probes.append(
            Probe(
                history=rng.choice(n_items, size=length, replace=False).astype(np.int64),
                tokens=rng.choice(n_tokens, size=n_user_tokens, replace=False).astype(np.int64),
            )
        )
    return probes


def _front_padded(indices: np.ndarray, pad: int) -> np.ndarray:
    return np.concatenate(([pad], indices)).astype(np.int64)


def save_graph(graph: onnx.ModelProto, path: Path) -> list[str]:
    """Write ``graph`` to ``path``, its initializers of ``SHARED_INITIALIZER_BYTES`` or more
    to ``MODEL_WEIGHTS_FILE`` beside it (each ``WEIGHTS_ALIGNMENT``-aligned); returns the
    files written besides ``path``. Those initializers' bytes move out of ``graph`` (it
    refers to the file from then on): copying the graph first would double the peak memory
    of exporting a large model."""
    large = [t for t in graph.graph.initializer if len(t.raw_data) >= SHARED_INITIALIZER_BYTES]
    if large:
        with path.with_name(MODEL_WEIGHTS_FILE).open("wb") as out:
            for tensor in large:
                out.write(b"\0" * (-out.tell() % WEIGHTS_ALIGNMENT))
                offset, size = out.tell(), len(tensor.raw_data)
                out.write(tensor.raw_data)
                external_data_helper.set_external_data(tensor, MODEL_WEIGHTS_FILE, offset, size)
                tensor.ClearField("raw_data")
    onnx.save_model(graph, str(path))
    return [MODEL_WEIGHTS_FILE] if large else []


def write_list(path: Path, values: Sequence[str]) -> None:
    path.write_text(json.dumps(list(values)) + "\n")
