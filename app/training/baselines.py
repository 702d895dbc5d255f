"""Reference recommenders the evaluation reports beside the served model.

* popularity: distinct train users per item;
* segment popularity: the same count within the user's (gender x age decade) segment, global
  popularity breaking ties and answering users without a segment;
* EASE (λ=250): the closed form in ``app.training.ease``, scored from the full train history;
* demographic ridge (λ=100): one-hot demographics (gender, age decade, occupation) to items,
  ``app.training.demographic``.

All of them rank every catalogue item except the user's train items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from app.data.types import ITEM_ID, USER_ID
from app.training.demographic import fit_demographic, mean_token_rows
from app.training.ease import fit_ease
from app.training.metrics import top_k_excluding

EASE_L2 = 250.0
DEMOGRAPHIC_L2 = 100.0
DEMOGRAPHIC_FIELDS = ("gender", "age", "occupation")
SEGMENT_FIELDS = ("gender", "age")


@dataclass(frozen=True)
class TrainMatrix:
    """The binary users x items train matrix over fixed user and item vocabularies."""

    user_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    interactions: sp.csr_matrix

    def user_rows(self, users: Sequence[str]) -> np.ndarray:
        position = {u: i for i, u in enumerate(self.user_ids)}
        return np.array([position[u] for u in users], dtype=np.int64)

    def popularity(self) -> np.ndarray:
        """Distinct train users per item."""
        return np.asarray(self.interactions.sum(axis=0)).ravel()

    def top_k(self, scores: np.ndarray, users: Sequence[str], k: int) -> list[list[str]]:
        """Item ids of the best ``k`` scores per row, the user's train items excluded."""
        rows = self.user_rows(users)
        indptr, indices = self.interactions.indptr, self.interactions.indices
        seen = [indices[indptr[r] : indptr[r + 1]].astype(np.int64) for r in rows]
        masked = np.array(scores, dtype=np.float64)
        top = top_k_excluding(masked, seen, k)
        # With fewer than k unseen items, top-k pads with excluded ones; drop them.
        return [
            [self.item_ids[i] for i in items if np.isfinite(masked[row, i])]
            for row, items in enumerate(top)
        ]


def train_matrix(
    train: pd.DataFrame, user_ids: Sequence[str], item_ids: Sequence[str]
) -> TrainMatrix:
    """Index ``train`` over the given vocabularies (every train id must be in them)."""
    users = pd.Index(user_ids)
    items = pd.Index(item_ids)
    rows = users.get_indexer(pd.Index(train[USER_ID].astype(str)))
    cols = items.get_indexer(pd.Index(train[ITEM_ID].astype(str)))
    if (rows < 0).any() or (cols < 0).any():
        raise ValueError("train interactions reference users or items outside the vocabulary")
    matrix = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(users), len(items)), dtype=np.float64
    )
    matrix.data[:] = 1.0  # repeated interactions count once
    return TrainMatrix(tuple(users), tuple(items), matrix)


def demographics(users: pd.DataFrame) -> pd.DataFrame:
    """Per user id, the present ``DEMOGRAPHIC_FIELDS`` as strings; age as a decade ("20s")."""
    fields = [f for f in DEMOGRAPHIC_FIELDS if f in users.columns]
    table = users[[USER_ID, *fields]].copy()
    table[USER_ID] = table[USER_ID].astype(str)
    for field in fields:
        table[field] = table[field].map(_age_decade if field == "age" else _text)
    return table.set_index(USER_ID)


def _age_decade(value: object) -> str | None:
    try:
        return f"{int(float(str(value)) // 10) * 10}s"
    except ValueError:
        return _text(value)


def _text(value: object) -> str | None:
    text = "" if value is None else str(value).strip()
    return None if text in ("", "nan", "None", "<NA>") else text


def popularity_scores(matrix: TrainMatrix, n_users: int) -> np.ndarray:
    """The same popularity row for ``n_users`` users; ties go to the lower item index."""
    counts = matrix.popularity()
    return np.tile(counts + _tie_break(len(counts)), (n_users, 1))


def segment_popularity_scores(
    matrix: TrainMatrix, segments: Sequence[str | None], users: Sequence[str]
) -> np.ndarray:
    """Popularity within each user's segment (``segments`` is parallel to ``matrix.user_ids``);
    global popularity, scaled below one count, breaks ties."""
    codes, labels = pd.factorize(np.array(segments, dtype=object), use_na_sentinel=True)
    known = codes >= 0
    membership = sp.csr_matrix(
        (np.ones(known.sum()), (codes[known], np.flatnonzero(known))),
        shape=(len(labels), matrix.interactions.shape[0]),
    )
    per_segment = np.asarray((membership @ matrix.interactions).todense())
    counts = matrix.popularity()
    global_rank = (counts + _tie_break(len(counts))) / (counts.max() + 1.0)
    user_codes = codes[matrix.user_rows(users)]
    scores = np.tile(global_rank, (len(users), 1))
    has_segment = user_codes >= 0
    scores[has_segment] += per_segment[user_codes[has_segment]]
    return scores


def ease_scores(matrix: TrainMatrix, users: Sequence[str], l2: float = EASE_L2) -> np.ndarray:
    """EASE scores from each user's whole train history."""
    weights = fit_ease(matrix.interactions, l2)
    return np.asarray(matrix.interactions[matrix.user_rows(users)] @ weights, dtype=np.float64)


def demographic_ridge_scores(
    matrix: TrainMatrix,
    user_tokens: sp.csr_matrix,
    users: Sequence[str],
    l2: float = DEMOGRAPHIC_L2,
) -> np.ndarray:
    """Ridge from one-hot demographics to items; ``user_tokens`` rows follow ``matrix.user_ids``.
    Users with train interactions fit it; any user with tokens can be scored."""
    weights = fit_demographic(user_tokens, matrix.interactions, l2)
    features = mean_token_rows(sp.csr_matrix(user_tokens[matrix.user_rows(users)]))
    return np.asarray(features @ weights, dtype=np.float64)


def one_hot_tokens(profile: pd.DataFrame, user_ids: Sequence[str]) -> sp.csr_matrix:
    """Binary users x ``field=value`` tokens from ``demographics`` output, rows in order of
    ``user_ids`` (users absent from ``profile`` get no tokens)."""
    rows: list[int] = []
    columns: list[int] = []
    vocab: dict[str, int] = {}
    for row, user in enumerate(user_ids):
        if user not in profile.index:
            continue
        for field, value in profile.loc[user].items():
            if value is not None and not pd.isna(value):
                rows.append(row)
                columns.append(vocab.setdefault(f"{field}={value}", len(vocab)))
    return sp.csr_matrix(
        (np.ones(len(rows)), (rows, columns)), shape=(len(user_ids), max(len(vocab), 1))
    )


def _tie_break(n_items: int) -> np.ndarray:
    """A bonus below 0.5 that falls with the index: equal integer counts rank by index."""
    return (n_items - np.arange(n_items)) / (2.0 * (n_items + 1))
