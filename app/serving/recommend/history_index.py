"""A user's history as the served model's item indices, remembered between requests.

Mapping every history id to its index is a dictionary probe per item (histories run to
thousands of items, and every one is excluded from the answer). The feature client hands an
unchanged profile back as the very same history tuple (``FeastFeatureClient``'s decode memo),
so looking it up here costs one hash over the items' cached string hashes.

An entry's key keeps its history alive, ids and all: once the decode memo has dropped that
profile (every event makes a new one), this memo is what holds them, so they count in its
budget. Counted as the index array alone, a full memo held over four times its budget.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from app.infra.memo import memoised
from app.serving.model.ranking import LoadedModel

# Per entry beyond its index array (object and data) and its history: the key's pair and the
# cache's own records of the entry.
_ENTRY_OVERHEAD = 250


def history_indexer(max_bytes: int) -> Callable[[LoadedModel, tuple[str, ...]], np.ndarray]:
    """``model.item_indices(history)``, remembered per (model version, history) within
    ``max_bytes``; 0 remembers nothing. The arrays handed out are read-only (shared)."""
    return memoised(_read_only_indices, _model_and_history, max_bytes)


def _model_and_history(model: LoadedModel, history: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    return model.version, history


def _read_only_indices(model: LoadedModel, history: tuple[str, ...]) -> tuple[np.ndarray, int]:
    found = model.item_indices(history)
    found.flags.writeable = False
    history_bytes = sys.getsizeof(history) + sum(map(sys.getsizeof, history))
    return found, sys.getsizeof(found) + history_bytes + _ENTRY_OVERHEAD
