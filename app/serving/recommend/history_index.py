"""A user's history as the served model's item indices, remembered between requests.

Mapping every history id to its index is a dictionary probe per item (histories run to
thousands of items, and every one is excluded from the answer). The feature client hands an
unchanged profile back as the very same history tuple (``FeastFeatureClient``'s decode memo),
so looking it up here costs one hash over the items' cached string hashes.
"""

from __future__ import annotations

import numpy as np

from app.infra.memo import SizedLRU
from app.serving.model.ranking import LoadedModel

# Per entry beyond its index array: the key's tuple of references and the entry itself.
_ENTRY_OVERHEAD = 200


class HistoryIndexer:
    """``model.item_indices(history)``, remembered per (model version, history) within
    ``max_bytes``; 0 remembers nothing. The arrays handed out are read-only (shared)."""

    def __init__(self, max_bytes: int) -> None:
        self._memo: SizedLRU[tuple[str, tuple[str, ...]], np.ndarray] | None = (
            SizedLRU(max_bytes) if max_bytes > 0 else None
        )

    def indices(self, model: LoadedModel, history: tuple[str, ...]) -> np.ndarray:
        if self._memo is None:
            return model.item_indices(history)
        key = (model.version, history)
        found = self._memo.get(key)
        if found is None:
            found = model.item_indices(history)
            found.flags.writeable = False
            self._memo.put(key, found, found.nbytes + 8 * len(history) + _ENTRY_OVERHEAD)
        return found
