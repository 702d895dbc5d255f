"""The model artifact contract shared by training (writer) and serving (reader).

A model version is a directory ``<models_root>/<version>/`` holding:

* ``model.onnx``: inputs ``history`` (int64 [H], item indices oldest -> newest) and
  ``user_tokens`` (int64 [T], attribute-token indices); output ``scores`` (float32 [n_items]).
  Index ``n_items`` (resp. ``n_tokens``) is a padding slot whose row is all zeros, so callers
  always pass at least one element.
* ``items.json``: item ids in index order.
* ``tokens.json``: user attribute tokens in index order.
* ``popular.json``: the popularity fallback, item ids best first.
* ``manifest.json``: ``ModelManifest`` below.
* optional, listed in ``ModelManifest.artifacts`` when present (older models lack them):
  ``model.onnx.data``: the graph's large initializers (ONNX external data, each at a 64 KiB
  aligned offset), which onnxruntime memory-maps, so the workers serving a version share one
  copy of its weights in the page cache;
  ``neighbours.npy`` (int32 [n_items, M]: each item's most related items, best first, ``-1``
  padded) and ``neighbour_scores.npy`` (float32 [n_items, M], ``-inf`` at the padding);
  ``catalogue.json`` (a JSON list of ``CatalogueItem``: the display attributes of the items,
  as the data held them at build time).

A two-stage model (``model_type`` ``TWO_STAGE_MODEL_TYPE``, for catalogues too large for the
dense hybrid; ``app/retrieval.py``) has the same files, but ``model.onnx`` ranks candidates
only: inputs ``history_vectors`` (float32 [H, d], the history items' embeddings oldest ->
newest after one all-zero padding row), ``user_tokens`` (as above), ``candidate_vectors``
(float32 [C, d]) and ``candidate_features`` (float32 [C, F]); outputs ``scores`` (float32
[C]) and ``user_vector`` (float32 [d], the query of the ANN search). Beside it, all listed in
``artifacts``: ``item_vectors.npy`` (float16 [n_items, d]), ``popularity.npy`` (float32
[n_items]), the neighbour index files above, and ``items.usearch`` (the ANN index); the
catalogue is ``catalogue.parquet`` (the ``CatalogueItem`` fields as columns) instead of JSON.
Models trained since the demographic cold-start term also list ``demographic_items.npy``
(int64 [D], sorted item indices) and ``demographic_weights.npy`` (float32 [n_tokens, D]);
without them a cold user's affinity feature is zero, which their weights ignore.

Models built since drift detection list ``drift_reference.json``: the training snapshot's
distributions (``app.monitoring.drift.DriftReference``) the drift job compares live traffic with.

Either family may ship the repeat model (``/recommend?repeat=true``), listed in ``artifacts``
when the build's validation kept repeats on: ``repeat_users.json`` (user pseudonyms, the
keyed hash of ``app.privacy.pseudonym``, in row order; never raw ids),
``repeat_indptr.npy`` (int64 [n_users + 1]), ``repeat_items.npy`` (int32) and
``repeat_scores.npy`` (float32, in ``(0, 1]``): a CSR matrix whose row holds the user's best
rebuys as of the build, best first. Its parameters are ``hyperparameters["repeat"]``.

``<models_root>/CURRENT`` names the published version. Publishing writes the directory under a
temporary name, renames it into place, then replaces ``CURRENT`` atomically, so a reader never
sees half a model. ``<models_root>/CHALLENGER``, when present, names a version published beside
it that serves a share of traffic until the guarded rollout (``app.rollout``) promotes it to
``CURRENT`` or rolls it back (the pointer is removed).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

MODEL_FILE = "model.onnx"
MODEL_WEIGHTS_FILE = "model.onnx.data"
ITEMS_FILE = "items.json"
TOKENS_FILE = "tokens.json"
POPULAR_FILE = "popular.json"
MANIFEST_FILE = "manifest.json"
DRIFT_REFERENCE_FILE = "drift_reference.json"
NEIGHBOURS_FILE = "neighbours.npy"
NEIGHBOUR_SCORES_FILE = "neighbour_scores.npy"
CATALOGUE_FILE = "catalogue.json"
CATALOGUE_PARQUET_FILE = "catalogue.parquet"
ITEM_VECTORS_FILE = "item_vectors.npy"
POPULARITY_FILE = "popularity.npy"
ANN_INDEX_FILE = "items.usearch"
DEMOGRAPHIC_ITEMS_FILE = "demographic_items.npy"
DEMOGRAPHIC_WEIGHTS_FILE = "demographic_weights.npy"
REPEAT_USERS_FILE = "repeat_users.json"
REPEAT_INDPTR_FILE = "repeat_indptr.npy"
REPEAT_ITEMS_FILE = "repeat_items.npy"
REPEAT_SCORES_FILE = "repeat_scores.npy"
REPEAT_HYPERPARAMETERS = "repeat"
TWO_STAGE_MODEL_TYPE = "two_stage_ann"
CURRENT_POINTER = "CURRENT"
CHALLENGER_POINTER = "CHALLENGER"
FORMAT_VERSION = 1

INPUT_HISTORY = "history"
INPUT_USER_TOKENS = "user_tokens"
OUTPUT_SCORES = "scores"
# Optional outputs read only to explain a score (models exported before them lack them).
# ``scores = Σ_term weights · rows + popularity``: per additive term, the input it reads, then
# the outputs holding the normalised weight of each input slot ([S]) and the blend-weighted
# matrix rows those slots gathered ([S, n_items]). The slots are the last S elements of the
# input (``transitions`` reads only the newest history items), padding included, weight 0.
# ``item_similarity`` is EASE + content, with the next-items regression folded in when both
# read the same recency weights; ``next_items`` is then empty (no slots), and otherwise the
# regression's own term. A graph with other terms (exported by an older version) is not
# explained, since its terms would not add up to its scores.
EXPLAIN_TERM_OUTPUTS = {
    "item_similarity": (INPUT_HISTORY, "ease_normalised", "ease_rows"),
    "transitions": (INPUT_HISTORY, "trans_normalised", "trans_rows"),
    "next_items": (INPUT_HISTORY, "seq_normalised", "seq_rows"),
    "demographic": (INPUT_USER_TOKENS, "demo_normalised", "demo_rows"),
}
OUTPUT_POPULARITY = "popularity_term"  # [n_items], the blend-weighted popularity prior
# The two-stage ranking graph's own inputs and output (besides user_tokens and scores).
INPUT_HISTORY_VECTORS = "history_vectors"
INPUT_CANDIDATE_VECTORS = "candidate_vectors"
INPUT_CANDIDATE_FEATURES = "candidate_features"
OUTPUT_USER_VECTOR = "user_vector"


class ParitySample(BaseModel):
    """One probe user's reference scores, kept so serving can re-check a graph it loads."""

    history: list[int] = Field(description="Item indices, oldest -> newest, no padding.")
    tokens: list[int] = Field(description="Attribute-token indices, no padding.")
    top_items: list[int] = Field(description="The reference's best item indices.")
    top_scores: list[float] = Field(description="The reference's scores of those items.")


class ParityReport(BaseModel):
    probes: int = Field(description="Users scored by both the training code and onnxruntime.")
    max_abs_diff: float
    tolerance: float
    samples: list[ParitySample] = Field(
        default_factory=list,
        description="A few probes' reference scores (absent from older models); serving "
        "refuses to load a graph that does not reproduce them within ``tolerance``.",
    )


class ModelManifest(BaseModel):
    format_version: int = FORMAT_VERSION
    version: str
    model_type: str
    trained_at: datetime
    data_fingerprint: str = Field(description="SHA-256 over the training tables.")
    data_version: int | None = Field(
        None, description="The data version trained on (``recserve data history``)."
    )
    table_versions: dict[str, int] = Field(
        default_factory=dict,
        description="Versioned (Delta) table name -> the version of it the model was trained on.",
    )
    n_items: int
    n_tokens: int
    history_max_items: int = Field(
        description="Newest history items serving sends the model: as many as its terms read."
    )
    feature_list: list[str] = Field(description="Feast features the model reads, view:name.")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    offline_metrics: dict[str, float] = Field(default_factory=dict)
    parity: ParityReport
    artifacts: list[str] = Field(
        default_factory=list, description="Optional files written beside the model, by name."
    )


class CatalogueItem(BaseModel):
    """What a page shows of an item, and what business rules filter on."""

    item_id: str
    title: str = Field(description="Display title; the item id when the data has none.")
    categories: list[str] = Field(
        default_factory=list, description="Category or genres, as the data names them."
    )
    price: float | None = None
    in_stock: bool = True
    hidden: bool = False
    image_url: str | None = None


def read_manifest(model_dir: Path) -> ModelManifest:
    return ModelManifest.model_validate_json((model_dir / MANIFEST_FILE).read_text())


def read_json_list(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise ValueError(f"{path}: expected a JSON list of strings")
    return data


class PublicationError(ValueError):
    """``CURRENT`` names something other than a version directory inside the models dir."""


def current_version(models_root: Path) -> str | None:
    """The version ``CURRENT`` names, None when nothing is published. Raises
    ``PublicationError`` unless it is a directory name whose directory resolves inside
    ``models_root`` (no path, no ``..``, no link out), and ``OSError`` when unreadable."""
    return _pointed_version(models_root, CURRENT_POINTER)


def challenger_version(models_root: Path) -> str | None:
    """The version ``CHALLENGER`` names, None when no rollout is under way; checked and raising
    like ``current_version``."""
    return _pointed_version(models_root, CHALLENGER_POINTER)


def _pointed_version(models_root: Path, pointer_name: str) -> str | None:
    pointer = models_root / pointer_name
    if not pointer.exists():
        return None
    version = pointer.read_text().strip()
    if not version:
        return None
    root = models_root.resolve()
    inside = (root / version).resolve()
    if Path(version).name != version or version in (".", "..") or inside.parent != root:
        raise PublicationError(
            f"{pointer} names {version[:80]!r}, not a version directory inside {models_root}"
        )
    return version


def publish(
    models_root: Path, staged_dir: Path, version: str, *, as_challenger: bool = False
) -> Path:
    """Move a fully written ``staged_dir`` to ``models_root/version`` and point CURRENT (or,
    ``as_challenger``, CHALLENGER) at it."""
    final_dir = models_root / version
    os.replace(staged_dir, final_dir)
    _point(models_root, CHALLENGER_POINTER if as_challenger else CURRENT_POINTER, version)
    return final_dir


def point_current(models_root: Path, version: str) -> None:
    """Replace ``CURRENT`` atomically so it names ``version`` (an already published model)."""
    _point(models_root, CURRENT_POINTER, version)


def point_challenger(models_root: Path, version: str) -> None:
    """Replace ``CHALLENGER`` atomically so it names ``version`` (an already published model)."""
    _point(models_root, CHALLENGER_POINTER, version)


def clear_challenger(models_root: Path) -> None:
    """Remove ``CHALLENGER``: no version serves beside ``CURRENT`` any more."""
    (models_root / CHALLENGER_POINTER).unlink(missing_ok=True)


def _point(models_root: Path, pointer_name: str, version: str) -> None:
    tmp_pointer = models_root / f".{pointer_name}.tmp"
    tmp_pointer.write_text(version + "\n")
    os.replace(tmp_pointer, models_root / pointer_name)
