"""Fit the repeat model on all of train and ship it beside a model version.

The hybrid (or two-stage) export writes the version's directory; this adds the repeat
model's arrays and records its parameters and validation figures in the same manifest, so
one build publishes both together (``app/artifacts.py`` names the files).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from app.artifacts import (
    MANIFEST_FILE,
    REPEAT_HYPERPARAMETERS,
    REPEAT_INDPTR_FILE,
    REPEAT_ITEMS_FILE,
    REPEAT_SCORES_FILE,
    REPEAT_USERS_FILE,
    ModelManifest,
    read_manifest,
)
from app.training.repeat import (
    RepeatParams,
    pair_scores,
    pair_stats,
    purchases_from,
    served_rows,
)
from app.training.repeat_learned import fit_repurchase_classifier, learned_pair_scores
from app.training.repeat_tuning import VALIDATION_SHARE, RepeatTuning, tune_repeat

# Rebuys kept per user: a page shows tens; the rest of a long history only costs memory.
SERVED_PER_USER = 200
REPEAT_FILES = (REPEAT_USERS_FILE, REPEAT_INDPTR_FILE, REPEAT_ITEMS_FILE, REPEAT_SCORES_FILE)


@dataclass(frozen=True)
class RepeatModel:
    """The tuned parameters, their validation figures, and the served CSR rows by user
    pseudonym (empty when validation turned repeats off)."""

    params: RepeatParams
    tuning: RepeatTuning
    user_keys: tuple[str, ...]
    indptr: np.ndarray
    items: np.ndarray
    scores: np.ndarray

    @property
    def enabled(self) -> bool:
        return self.params.exploration_weight is not None


def fit_repeat_model(
    interactions: pd.DataFrame,
    user_ids: tuple[str, ...],
    item_ids: tuple[str, ...],
    user_key: Callable[[str], str],
) -> RepeatModel:
    """Tune on validation, then fit on every interaction with the chosen parameters. Rows are
    stored under ``user_key(user_id)`` (the user's pseudonym): the model files never hold a
    raw user id."""
    purchases = purchases_from(interactions, user_ids, item_ids)
    params, tuning = tune_repeat(purchases)
    if params.exploration_weight is None:
        empty = np.empty(0)
        return RepeatModel(params, tuning, (), np.zeros(1, dtype=np.int64), empty, empty)
    stats = pair_stats(purchases)
    # Trained on the newest window of all purchases: the one just before what is served.
    classifier = fit_repurchase_classifier(purchases, VALIDATION_SHARE) if params.learned else None
    if classifier is None:
        scores = pair_scores(stats, params)
    else:
        scores = learned_pair_scores(classifier, purchases, stats)
    indptr, items, scores = served_rows(stats, scores, SERVED_PER_USER)
    keys = tuple(user_key(user) for user in user_ids)
    return RepeatModel(params, tuning, keys, indptr, items, scores)


def write_repeat_model(model: RepeatModel, model_dir: Path) -> ModelManifest:
    """Add the repeat model to the exported version in ``model_dir`` (not yet published);
    the manifest as rewritten."""
    manifest = read_manifest(model_dir)
    artifacts = list(manifest.artifacts)
    if model.enabled:
        (model_dir / REPEAT_USERS_FILE).write_text(json.dumps(list(model.user_keys)))
        np.save(model_dir / REPEAT_INDPTR_FILE, model.indptr)
        np.save(model_dir / REPEAT_ITEMS_FILE, model.items)
        np.save(model_dir / REPEAT_SCORES_FILE, model.scores)
        artifacts += [name for name in REPEAT_FILES if name not in artifacts]
    updated = manifest.model_copy(
        update={
            "hyperparameters": {
                **manifest.hyperparameters,
                REPEAT_HYPERPARAMETERS: model.params.as_dict(),
            },
            "offline_metrics": {**manifest.offline_metrics, **model.tuning.as_metrics()},
            "artifacts": artifacts,
        }
    )
    (model_dir / MANIFEST_FILE).write_text(updated.model_dump_json(indent=2) + "\n")
    return updated
