"""Reference recommenders the evaluation reports beside the served model.

* popularity: distinct train users per item;
* segment popularity: the same count within the user's (gender x age decade) segment, global
  popularity breaking ties and answering users without a segment;
* EASE (λ=250): the closed form in ``app.training.ease``, scored from the full train history;
  on catalogues above ``EASE_MAX_ITEMS`` it is fitted over the most popular items only, since
  its dense item x item inverse grows with the cube of the catalogue;
* demographic ridge (λ=100): one-hot demographics (gender, age decade, occupation) to items,
  ``app.training.demographic``.

Each is fitted once and returns a ``RowScorer``; ``TrainMatrix.top_k`` asks it for a bounded
block of users at a time, so a dataset of 100k users x 30k items never holds the 24 GB dense
users x items score matrix. All of them rank every catalogue item except the user's train
items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from app.data.types import ITEM_ID, USER_ID
from app.training.demographic import fit_demographic, mean_token_rows
from app.training.ease import fit_ease
from app.training.metrics import top_k_excluding

EASE_L2 = 250.0
# 10k items: an 800 MB Gram matrix inverted in ~20 s here; 30k would need 7 GB and 27x longer.
EASE_MAX_ITEMS = 10_000
# Users x items scores held at once while ranking: 2^25 float64 cells, 256 MB.
SCORE_BLOCK_CELLS = 1 << 25
DEMOGRAPHIC_L2 = 100.0
DEMOGRAPHIC_FIELDS = ("gender", "age", "occupation")
SEGMENT_FIELDS = ("gender", "age")


# Matrix rows (users) -> their scores over every item, one row each.
RowScorer = Callable[[np.ndarray], np.ndarray]


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

    def most_popular(self, n: int) -> np.ndarray:
        """Indices of the ``n`` most popular items, ties to the lower index."""
        counts = self.popularity()
        return np.lexsort((np.arange(len(counts)), -counts))[:n]

    def top_k(
        self,
        scorer: RowScorer,
        users: Sequence[str],
        k: int,
        block_cells: int = SCORE_BLOCK_CELLS,
    ) -> list[list[str]]:
        """Item ids of the best ``k`` scores per user, the user's train items excluded;
        ``scorer`` is asked for at most ``block_cells`` scores at a time."""
        rows = self.user_rows(users)
        indptr, indices = self.interactions.indptr, self.interactions.indices
        block = max(1, block_cells // max(1, len(self.item_ids)))
        lists: list[list[str]] = []
        for start in range(0, len(rows), block):
            chunk = rows[start : start + block]
            masked = np.array(scorer(chunk), dtype=np.float64)
            seen = [indices[indptr[r] : indptr[r + 1]].astype(np.int64) for r in chunk]
            top = top_k_excluding(masked, seen, k)
            # With fewer than k unseen (or scored) items, top-k pads with excluded ones.
            lists += [
                [self.item_ids[i] for i in items if np.isfinite(masked[row, i])]
                for row, items in enumerate(top)
            ]
        return lists


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


def popularity(matrix: TrainMatrix) -> RowScorer:
    """The same popularity row for every user; ties go to the lower item index."""
    counts = matrix.popularity()
    ranked = counts + _tie_break(len(counts))
    return lambda rows: np.tile(ranked, (len(rows), 1))


def segment_popularity(matrix: TrainMatrix, segments: Sequence[str | None]) -> RowScorer:
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

    def score(rows: np.ndarray) -> np.ndarray:
        user_codes = codes[rows]
        scores = np.tile(global_rank, (len(rows), 1))
        has_segment = user_codes >= 0
        scores[has_segment] += per_segment[user_codes[has_segment]]
        return scores

    return score


def ease(matrix: TrainMatrix, l2: float = EASE_L2, max_items: int = EASE_MAX_ITEMS) -> RowScorer:
    """EASE scores from each user's whole train history, over the ``max_items`` most popular
    items when the catalogue is larger (the others score -inf: never recommended)."""
    n_items = len(matrix.item_ids)
    kept = np.sort(matrix.most_popular(max_items)) if n_items > max_items else None
    history = matrix.interactions if kept is None else matrix.interactions[:, kept]
    weights = fit_ease(sp.csr_matrix(history), l2)

    def score(rows: np.ndarray) -> np.ndarray:
        scored = np.asarray(history[rows] @ weights, dtype=np.float64)
        if kept is None:
            return scored
        scores = np.full((len(rows), n_items), -np.inf)
        scores[:, kept] = scored
        return scores

    return score


def ease_name(matrix: TrainMatrix, max_items: int = EASE_MAX_ITEMS) -> str:
    """The EASE row's label, saying when it only ranks the most popular items."""
    name = f"EASE λ={EASE_L2:g}"
    if len(matrix.item_ids) > max_items:
        name += f" (top {max_items:,} items)"
    return name


def demographic_ridge(
    matrix: TrainMatrix, user_tokens: sp.csr_matrix, l2: float = DEMOGRAPHIC_L2
) -> RowScorer:
    """Ridge from one-hot demographics to items; ``user_tokens`` rows follow ``matrix.user_ids``.
    Users with train interactions fit it; any user with tokens can be scored."""
    weights = fit_demographic(user_tokens, matrix.interactions, l2)
    return lambda rows: np.asarray(
        mean_token_rows(sp.csr_matrix(user_tokens[rows])) @ weights, dtype=np.float64
    )


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
