"""The baselines of ``recserve evaluate``, tuned the way the build tunes the served model.

Each baseline's hyperparameters are chosen on a validation split carved from the protocol's
train part by the build's own rules (``split.time_split`` for the warm protocol, the mean over
``split.cold_validation_folds`` for the cold one; the same shares, seed and cap on validation
users as ``tuning.py``), judged by NDCG@10 (``metrics``), then the winner is refitted on the
whole train part. So a margin of the served model over a baseline is a margin over a
baseline given the same chance.

Users reach every recommender the way they reach the served model: their train history and
the attribute tokens the build makes of their ``.user`` row, looked up by id; a user without
train rows (a cold user) has tokens only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.data.types import ITEM_ID, Dataset, FieldType
from app.features.tokens import attribute_tokens
from app.training.baselines import (
    EASE,
    SEGMENT_FIELDS,
    DemographicRidge,
    ItemKNN,
    Popularity,
    RP3Beta,
    SegmentPopularity,
)
from app.training.metrics import ranking_metrics
from app.training.recommender import Recommender, recommend_in_blocks
from app.training.split import (
    COLD_USER_SHARE,
    WARM_TEST_SHARE,
    HoldoutSplit,
    cold_validation_folds,
    time_split,
)
from app.training.types import TrainingData, training_data_from

K = 10
MAX_VALIDATION_USERS = 3000
VALIDATION_SEED = 0
L2_GRID = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
RIDGE_L2_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
NEIGHBOURS_GRID = (10, 25, 50, 100, 200, 400)
RP3_GRID = tuple((alpha, beta) for alpha in (0.5, 0.75, 1.0) for beta in (0.0, 0.25, 0.5))

Candidates = Callable[[], list[Recommender[Any]]]


def baseline_candidates(protocol: str, data: TrainingData) -> dict[str, Candidates]:
    """Per baseline name, its hyperparameter grid (one candidate: nothing to tune). The
    item-item baselines need a history, the demographic ones attribute tokens."""
    fields = {t.split("=", 1)[0] for t in data.tokens}
    grids: dict[str, Candidates] = {"popularity": lambda: [Popularity()]}
    if all(f in fields for f in SEGMENT_FIELDS):
        grids["segment popularity"] = lambda: [SegmentPopularity()]
    if protocol == "warm":
        grids["EASE"] = lambda: [EASE(l2) for l2 in L2_GRID]
        grids["item-kNN"] = lambda: [ItemKNN(n) for n in NEIGHBOURS_GRID]
        grids["RP3beta"] = lambda: [RP3Beta(a, b) for a, b in RP3_GRID]
    elif data.n_tokens:
        grids["demographic ridge"] = lambda: [DemographicRidge(l2) for l2 in RIDGE_L2_GRID]
    return grids


@dataclass(frozen=True)
class TunedBaseline:
    name: str
    model: Recommender[Any]  # fitted on the whole train part
    params: dict[str, Any]
    validation_ndcg: float | None  # None: a single candidate, nothing was chosen


class UserFeatures:
    """What a recommender is told about a user of ``data``'s world: their history (all their
    train items, oldest -> newest) and their tokens, both as indices of ``data``."""

    def __init__(self, data: TrainingData, user_tokens: Mapping[str, Sequence[str]]) -> None:
        self.data = data
        self.user_tokens = user_tokens
        self._row = {u: i for i, u in enumerate(data.user_ids)}
        self._token = {t: i for i, t in enumerate(data.tokens)}
        self._histories = data.histories(max_items=len(data.item_index))
        self._empty = np.empty(0, dtype=np.int64)

    def of(self, users: Sequence[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        histories, tokens = [], []
        for user in users:
            row = self._row.get(user)
            histories.append(self._empty if row is None else self._histories[row])
            known = [self._token[t] for t in self.user_tokens.get(user, ()) if t in self._token]
            tokens.append(np.array(sorted(known), dtype=np.int64))
        return histories, tokens


def tuned_baselines(protocol: str, train: TrainingData) -> list[TunedBaseline]:
    """Every baseline of ``protocol``, tuned on validation and refitted on ``train``."""
    folds = [
        (split, validation_users(protocol, split)) for split in validation_splits(protocol, train)
    ]
    folds = [(split, users) for split, users in folds if len(users)]
    tuned = []
    for name, candidates in baseline_candidates(protocol, train).items():
        grid = candidates()
        best, best_ndcg = grid[0], None
        if len(grid) > 1 and folds:
            scores = [
                float(np.mean([validation_ndcg(m, split, users) for split, users in folds]))
                for m in grid
            ]
            best_ndcg = max(scores)
            best = grid[scores.index(best_ndcg)]
        tuned.append(TunedBaseline(name, best.fit(train), best.params.as_dict(), best_ndcg))
    return tuned


def validation_splits(protocol: str, train: TrainingData) -> list[HoldoutSplit]:
    """The build's validation for ``protocol``: the warm split, or the cold folds."""
    if protocol == "warm":
        return [time_split(train, WARM_TEST_SHARE)]
    return cold_validation_folds(
        train, COLD_USER_SHARE, seed=VALIDATION_SEED, max_users=MAX_VALIDATION_USERS
    )


def validation_users(protocol: str, split: HoldoutSplit) -> np.ndarray:
    """Users with targets (warm: and a history left), at most ``MAX_VALIDATION_USERS`` of
    them drawn as the build's tuning draws them."""
    users = split.users_with_targets()
    if protocol == "warm":
        has_history = np.bincount(split.train.user_index, minlength=split.train.n_users) > 0
        users = users[has_history[users]]
    rng = np.random.default_rng(VALIDATION_SEED)
    return np.sort(rng.permutation(users)[:MAX_VALIDATION_USERS])


def validation_ndcg(model: Recommender[Any], split: HoldoutSplit, users: np.ndarray) -> float:
    model.fit(split.train)
    histories = split.train.histories(max_items=len(split.train.item_index))
    tokens = split.train.user_token_lists()
    lists = recommend_in_blocks(model, [histories[u] for u in users], [tokens[u] for u in users], K)
    position = {item: i for i, item in enumerate(split.train.item_ids)}
    top = np.full((len(users), K), -1, dtype=np.int64)
    for row, items in enumerate(lists):
        top[row, : len(items)] = [position[i] for i in items]
    return ranking_metrics(top, [split.targets[u] for u in users], K)[f"ndcg@{K}"]


def attribute_tokens_by_id(
    table: pd.DataFrame, fields: Mapping[str, FieldType], id_column: str
) -> dict[str, tuple[str, ...]]:
    """The attribute tokens the build gives each row of a users or items table (``gender=F``,
    ``age=20s``, ...), by id; none without the table."""
    if id_column not in table.columns:
        return {}
    return attribute_tokens(table, fields, id_column).by_id()


def baseline_training_data(
    train: pd.DataFrame, dataset: Dataset, tokens: Mapping[str, Sequence[str]]
) -> TrainingData:
    """The train part in index space, over the dataset's whole catalogue."""
    items = dataset.items[[ITEM_ID]] if ITEM_ID in dataset.items else pd.DataFrame()
    return training_data_from(Dataset(train, dataset.users, items), tokens, {})
