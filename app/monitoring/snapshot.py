"""The drift reference of a published model, with what binning live traffic needs from the
model directory: the items the model knows and their first category."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from pydantic import ValidationError

from app.artifacts import (
    CATALOGUE_FILE,
    CATALOGUE_PARQUET_FILE,
    DRIFT_REFERENCE_FILE,
    ITEMS_FILE,
    read_json_list,
)
from app.monitoring.drift import Binner, DriftReference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReferenceSnapshot:
    model_dir: Path
    reference: DriftReference
    binner: Binner
    known_items: frozenset[str]


def load_snapshot(model_dir: Path) -> ReferenceSnapshot | None:
    """The model's reference, or None when it has none (built before drift detection) or it
    is unreadable (logged)."""
    path = model_dir / DRIFT_REFERENCE_FILE
    if not path.is_file():
        return None
    try:
        reference = DriftReference.model_validate_json(path.read_bytes())
        known = frozenset(read_json_list(model_dir / ITEMS_FILE))
        categories = item_categories(model_dir)
    except (OSError, ValueError, ValidationError) as exc:
        log.warning("drift reference of %s unreadable: %s", model_dir, exc)
        return None
    return ReferenceSnapshot(model_dir, reference, Binner.of(reference, categories.get), known)


def item_categories(model_dir: Path) -> dict[str, str]:
    """Item id -> first category, from the catalogue published beside the model (empty when
    there is none)."""
    if (model_dir / CATALOGUE_PARQUET_FILE).is_file():
        table = pq.read_table(model_dir / CATALOGUE_PARQUET_FILE, columns=["item_id", "categories"])
        items, categories = table.column("item_id"), table.column("categories")
        pairs = zip(items.to_pylist(), categories.to_pylist(), strict=True)
        return {str(item): cats[0] for item, cats in pairs if cats}
    if (model_dir / CATALOGUE_FILE).is_file():
        entries = json.loads((model_dir / CATALOGUE_FILE).read_text())
        return {e["item_id"]: e["categories"][0] for e in entries if e.get("categories")}
    return {}
