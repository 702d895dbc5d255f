"""``TrainingData``: the index-space view of a ``Dataset`` every training module reads.

Ids become dense indices once, here, so the models work on integer arrays and sparse matrices
only. Interaction rows are kept sorted by (user, timestamp, item id), which is what the
per-user time splits and the history builder rely on.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from app.data.types import ITEM_ID, TIMESTAMP, USER_ID, Dataset


@dataclass(frozen=True)
class TrainingData:
    """Interactions and attribute tokens in index space.

    ``user_index``/``item_index``/``timestamps`` are parallel arrays, one entry per interaction,
    sorted by (user, timestamp, item id). ``user_tokens`` is a binary users x tokens matrix over
    the vocabulary ``tokens``; ``item_tokens`` a binary items x item-tokens matrix over
    ``item_token_names``.
    """

    item_ids: tuple[str, ...]
    user_ids: tuple[str, ...]
    tokens: tuple[str, ...]
    item_token_names: tuple[str, ...]
    user_index: np.ndarray
    item_index: np.ndarray
    timestamps: np.ndarray
    user_tokens: sp.csr_matrix
    item_tokens: sp.csr_matrix

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def interaction_matrix(self) -> sp.csr_matrix:
        """Binary users x items matrix: 1 where the user interacted with the item at least once."""
        ones = np.ones(len(self.user_index), dtype=np.float64)
        matrix = sp.csr_matrix(
            (ones, (self.user_index, self.item_index)), shape=(self.n_users, self.n_items)
        )
        matrix.data[:] = 1.0  # duplicates were summed; the model wants presence only
        return matrix

    def histories(self, max_items: int) -> list[np.ndarray]:
        """Per user, distinct items ordered by last interaction (oldest -> newest), the last
        ``max_items`` of them: exactly what the online store holds as ``history_items``."""
        return self.histories_with_steps(max_items)[0]

    def histories_with_steps(self, max_items: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``histories(max_items)`` and, aligned with each, the step of every item: items
        whose last interactions share a timestamp (a basket, ratings entered in one go) share a
        step, and steps count up by one per distinct timestamp. Sequence models read a step
        as one move of the user, so the order inside it (by item id) is never a transition."""
        key = self.user_index * self.n_items + self.item_index
        # Rows are time-sorted, so the first hit in reversed order is each pair's last event.
        _, first_in_reversed = np.unique(key[::-1], return_index=True)
        last_rows = np.sort(len(key) - 1 - first_in_reversed)
        users = self.user_index[last_rows]
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        items = self.item_index[last_rows]
        times = self.timestamps[last_rows]
        new_step = np.ones(len(last_rows), dtype=np.int64)
        new_step[1:] = (times[1:] != times[:-1]) | (users[1:] != users[:-1])
        steps = np.cumsum(new_step)
        windows = [
            slice(max(start, end - max_items), end) for start, end in itertools.pairwise(bounds)
        ]
        return [items[w] for w in windows], [steps[w] for w in windows]

    def user_token_lists(self) -> list[np.ndarray]:
        """Per user, the indices of their attribute tokens (possibly empty)."""
        indptr, indices = self.user_tokens.indptr, self.user_tokens.indices
        return [indices[indptr[u] : indptr[u + 1]].astype(np.int64) for u in range(self.n_users)]

    def with_rows(self, keep: np.ndarray) -> TrainingData:
        """The same vocabularies with only the interaction rows where ``keep`` is True."""
        return TrainingData(
            item_ids=self.item_ids,
            user_ids=self.user_ids,
            tokens=self.tokens,
            item_token_names=self.item_token_names,
            user_index=self.user_index[keep],
            item_index=self.item_index[keep],
            timestamps=self.timestamps[keep],
            user_tokens=self.user_tokens,
            item_tokens=self.item_tokens,
        )

    def without_unsupported_tokens(self) -> TrainingData:
        """The same data with every user token that no user with an interaction carries
        cleared from all rows (the vocabulary keeps its indices).

        A build indexes only users with interactions (``training_data_from``), so such a token
        is never in the served vocabulary: a new user carrying it is scored from their other
        tokens. Held-out users (the cold ones above all) must be scored the same way; keeping
        the token would count it in their mean of token rows with no fitted weight behind it,
        diluting the rest."""
        active = np.bincount(self.user_index, minlength=self.n_users) > 0
        carried = np.asarray(self.user_tokens[active].sum(axis=0)).ravel() > 0
        tokens = sp.csr_matrix(self.user_tokens @ sp.diags(carried.astype(np.float64)))
        tokens.eliminate_zeros()
        tokens.sort_indices()  # each row's tokens in vocabulary order, as built
        return replace(self, user_tokens=tokens)


def training_data_from(
    dataset: Dataset,
    user_tokens: Mapping[str, Sequence[str]],
    item_tokens: Mapping[str, Sequence[str]],
) -> TrainingData:
    """Index a dataset for training.

    Users are those with at least one interaction; items are the catalogue (``dataset.items``)
    plus any interacted item, so never-bought catalogue items still get content neighbours.
    ``user_tokens``/``item_tokens`` map ids to attribute tokens (e.g. ``gender=F``); ids absent
    from them simply have no tokens, and entries for unknown ids are ignored.
    """
    frame = dataset.interactions
    missing = [c for c in (USER_ID, ITEM_ID, TIMESTAMP) if c not in frame.columns]
    if missing:
        raise ValueError(f"interactions table lacks column(s) {missing}")
    if frame.empty:
        raise ValueError("interactions table is empty: nothing to train on")
    user_ids = np.array(sorted(frame[USER_ID].astype(str).unique()), dtype=object)
    catalogue = dataset.items[ITEM_ID].astype(str) if ITEM_ID in dataset.items else pd.Series()
    item_ids = np.array(sorted(set(catalogue) | set(frame[ITEM_ID].astype(str))), dtype=object)
    user_index = np.searchsorted(user_ids, frame[USER_ID].astype(str).to_numpy())
    item_index = np.searchsorted(item_ids, frame[ITEM_ID].astype(str).to_numpy())
    timestamps = frame[TIMESTAMP].to_numpy(dtype=np.int64)
    # Item ids sort in index order, so the item index is the documented tie-breaker.
    order = np.lexsort((item_index, timestamps, user_index))
    user_vocab, user_matrix = _token_matrix(list(user_ids), user_tokens)
    item_vocab, item_matrix = _token_matrix(list(item_ids), item_tokens)
    return TrainingData(
        item_ids=tuple(item_ids),
        user_ids=tuple(user_ids),
        tokens=user_vocab,
        item_token_names=item_vocab,
        user_index=user_index[order].astype(np.int64),
        item_index=item_index[order].astype(np.int64),
        timestamps=timestamps[order],
        user_tokens=user_matrix,
        item_tokens=item_matrix,
    )


def _token_matrix(
    ids: list[str], tokens_by_id: Mapping[str, Sequence[str]]
) -> tuple[tuple[str, ...], sp.csr_matrix]:
    """A sorted vocabulary of the tokens ``ids`` carry and the binary ids x vocab matrix."""
    per_id = [sorted(set(tokens_by_id.get(i, ()))) for i in ids]
    for entity_id, tokens in zip(ids, per_id, strict=True):
        bad = [t for t in tokens if not isinstance(t, str) or not t]
        if bad:
            raise ValueError(f"tokens of {entity_id!r} must be non-empty strings, got {bad}")
    vocab = tuple(sorted({t for tokens in per_id for t in tokens}))
    position = {t: k for k, t in enumerate(vocab)}
    rows = np.repeat(np.arange(len(ids)), [len(t) for t in per_id])
    cols = np.fromiter((position[t] for tokens in per_id for t in tokens), dtype=np.int64)
    values = np.ones(len(cols), dtype=np.float64)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(ids), len(vocab)))
    return vocab, matrix


class Vocabulary:
    """What a fitted model addresses by index: ``item_ids_[i]`` and user ``tokens_[t]``
    (empty until ``fit``)."""

    def __init__(self) -> None:
        self.item_ids_: tuple[str, ...] = ()
        self.tokens_: tuple[str, ...] = ()

    @property
    def n_items(self) -> int:
        return len(self.item_ids_)

    @property
    def n_tokens(self) -> int:
        return len(self.tokens_)
