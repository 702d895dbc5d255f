"""The offline evaluation protocol: warm and cold splits of a validated dataset, and the
per-user top-k metrics.

Every interaction is an implicit positive.

* **Warm**: per user, interactions sorted by (timestamp, item id); the last ``share`` of them
  (rounded half up, at least one) are test, the rest train.
* **Cold**: ``share`` of the users with interactions, drawn with a fixed seed, lose all their
  interactions from training (their ``.user`` attributes stay); all of them are test.

A user's relevant items are the distinct test items not in their train interactions: train
items are excluded from ranking, so counting them would only inflate the ideal DCG.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from app.data.types import EVENT_TYPE, ITEM_ID, RETAIL_COLUMNS, TIMESTAMP, USER_ID, VALUE

WARM_TEST_SHARE = 0.2
COLD_USER_SHARE = 0.1
# The cold protocol's default draw. A draw of ~94 cold users on ml-100k moves NDCG@10 by a few
# hundredths from seed to seed, so figures compare with the baselines a peer library publishes
# (``ML100K_REFERENCE``) only on a draw like its own: 276 is the seed whose three baselines come
# closest to them, found by ``loadtests/cold_draws.py``, which never builds the served model,
# so the choice is blind to it (docs/quality.md).
DEFAULT_COLD_SEED = 276
ATOMIC_INTERACTION_FIELDS = {
    USER_ID: "token",
    ITEM_ID: "token",
    TIMESTAMP: "float",
    EVENT_TYPE: "token",
    VALUE: "float",
}


@dataclass(frozen=True)
class EvaluationSplit:
    """``train`` rows of the interactions table; ``relevant[user]`` the distinct test items
    that user did not interact with in train (users without any are left out)."""

    train: pd.DataFrame
    relevant: dict[str, frozenset[str]]

    @property
    def test_users(self) -> list[str]:
        return sorted(self.relevant)


def warm_split(interactions: pd.DataFrame, share: float = WARM_TEST_SHARE) -> EvaluationSplit:
    """Hold out the last ``share`` of every user's interactions by (timestamp, item id)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share}")
    frame = interactions.sort_values([USER_ID, TIMESTAMP, ITEM_ID], kind="stable")
    position = frame.groupby(USER_ID, sort=False).cumcount().to_numpy()
    counts = frame.groupby(USER_ID, sort=False)[USER_ID].transform("size").to_numpy()
    n_test = np.maximum(1, np.floor(counts * share + 0.5)).astype(np.int64)
    is_test = position >= counts - n_test
    return _split(frame[~is_test], frame[is_test])


def cold_split(
    interactions: pd.DataFrame, share: float = COLD_USER_SHARE, seed: int = DEFAULT_COLD_SEED
) -> EvaluationSplit:
    """Move ``share`` of the users (rounded, at least one), drawn with ``seed``, entirely to
    test; the same data and seed always draw the same users."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share}")
    users = np.array(sorted(interactions[USER_ID].astype(str).unique()), dtype=object)
    n_cold = max(1, math.floor(len(users) * share + 0.5))
    cold = set(np.random.default_rng(seed).choice(users, size=n_cold, replace=False).tolist())
    is_test = interactions[USER_ID].astype(str).isin(cold).to_numpy()
    return _split(interactions[~is_test], interactions[is_test])


def protocol_split(
    protocol: str, interactions: pd.DataFrame, cold_seed: int = DEFAULT_COLD_SEED
) -> EvaluationSplit:
    """The split of ``protocol``: ``warm`` (``warm_split``) or ``cold`` (``cold_split``)."""
    if protocol == "warm":
        return warm_split(interactions)
    if protocol == "cold":
        return cold_split(interactions, seed=cold_seed)
    raise ValueError(f"unknown protocol {protocol!r}; expected 'warm' or 'cold'")


def _split(train: pd.DataFrame, test: pd.DataFrame) -> EvaluationSplit:
    seen = set(zip(train[USER_ID].astype(str), train[ITEM_ID].astype(str), strict=True))
    relevant: dict[str, set[str]] = {}
    for user, item in zip(test[USER_ID].astype(str), test[ITEM_ID].astype(str), strict=True):
        if (user, item) not in seen:
            relevant.setdefault(user, set()).add(item)
    return EvaluationSplit(
        train=train.reset_index(drop=True),
        relevant={user: frozenset(items) for user, items in relevant.items()},
    )


def write_atomic_interactions(train: pd.DataFrame, path: Path) -> Path:
    """Write ``train`` as a RecBole ``.inter`` file that ingestion reads back unchanged,
    retail columns (quantity, price, basket id) included when ``train`` has them."""
    fields = {
        **ATOMIC_INTERACTION_FIELDS,
        **{name: kind for name, kind in RETAIL_COLUMNS.items() if name in train},
    }
    columns = list(fields)
    for column in (USER_ID, ITEM_ID, EVENT_TYPE):
        bad = train[column].astype(str).str.contains(r"[\t\r\n]", regex=True)
        if bad.any():
            raise ValueError(f"{column} {train[column][bad].iloc[0]!r} holds a tab or newline")
    header = "\t".join(f"{name}:{kind}" for name, kind in fields.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    body = train[columns].to_csv(sep="\t", header=False, index=False, lineterminator="\n")
    path.write_text(header + "\n" + body, encoding="utf-8")
    return path


@dataclass(frozen=True)
class UserMetrics:
    """Per-user NDCG@k, recall@k and hit@k, parallel to the list of users scored."""

    ndcg: np.ndarray
    recall: np.ndarray
    hit: np.ndarray


def user_metrics(
    recommended: Sequence[Sequence[str]], relevant: Sequence[Collection[str]], k: int
) -> UserMetrics:
    """Binary-relevance metrics of each ranked list against its relevant set.

    NDCG@k divides by the ideal DCG over ``min(|relevant|, k)`` hits; recall@k is
    ``hits / min(|relevant|, k)``; hit@k is 1 when any of the top ``k`` is relevant. A list
    shorter than ``k`` simply has fewer chances.
    """
    if len(recommended) != len(relevant):
        raise ValueError(f"{len(recommended)} ranked lists but {len(relevant)} relevant sets")
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, recall, hit = (np.zeros(len(relevant)) for _ in range(3))
    for row, (ranked, rel) in enumerate(zip(recommended, relevant, strict=True)):
        if not rel:
            raise ValueError(f"user row {row} has no relevant items")
        is_hit = np.array([item in rel for item in ranked[:k]], dtype=bool)
        cap = min(len(rel), k)
        ndcg[row] = discounts[: len(is_hit)][is_hit].sum() / discounts[:cap].sum()
        recall[row] = is_hit.sum() / cap
        hit[row] = float(is_hit.any())
    return UserMetrics(ndcg=ndcg, recall=recall, hit=hit)
