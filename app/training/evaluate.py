"""``recserve evaluate``: the product's offline numbers, beside reference baselines.

For each protocol (``evaluate_protocol``) the train part is written as a RecBole dataset and
built exactly as ``recserve build`` builds (ingest, Feast features, tuning, ONNX export) into
a throw-away home; the test users are then answered by the serving engine ``/recommend``
uses, passed in as ``served`` because training code never imports serving.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from app.data.ingest import ingest, load_dataset
from app.data.types import ITEM_ID, TIMESTAMP, USER_ID, DataFormatError, Dataset
from app.settings import Settings
from app.training.baselines import (
    SEGMENT_FIELDS,
    TrainMatrix,
    demographic_ridge,
    demographics,
    ease,
    ease_name,
    one_hot_tokens,
    popularity,
    segment_popularity,
    train_matrix,
)
from app.training.evaluate_protocol import (
    DEFAULT_COLD_SEED,
    EvaluationSplit,
    protocol_split,
    user_metrics,
    write_atomic_interactions,
)
from app.training.evaluate_report import EvaluationReport, MethodScores, ProtocolResult
from app.training.pipeline import build

K = 10
HEAD_SHARE = 0.2  # items outside the top 20% by train popularity are the long tail
PROTOCOLS = ("warm", "cold")
NO_TIME_NOTE = (
    "every interaction has the same timestamp: the warm split's tie rule makes each user's "
    "highest item ids the test items, an order the served model's sequence terms can learn, "
    "so the warm figures say little about recommendation quality"
)
SERVED = "served model"
# NDCG@10 a peer library reports on ml-100k under the same protocol.
ML100K_REFERENCE = {
    ("warm", "popularity"): 0.113,
    ("cold", "popularity"): 0.578,
    ("cold", "segment popularity"): 0.602,
    ("warm", "EASE λ=250"): 0.195,
    ("cold", "demographic ridge λ=100"): 0.605,
}


@dataclass(frozen=True)
class ServedList:
    """What the serving engine answered for one user: item ids, best first, and its source."""

    items: list[str]
    source: str


ServedTopK = Callable[[Settings, Sequence[str], int], list[ServedList]]


def evaluate(
    settings: Settings,
    source: Path,
    served: ServedTopK,
    *,
    protocols: Sequence[str] = PROTOCOLS,
    seed: int = DEFAULT_COLD_SEED,
    tuning_budget_seconds: float = 120.0,
) -> EvaluationReport:
    """Evaluate the served model and the baselines on ``source`` (a RecBole atomic dir)."""
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocol(s) {unknown}; expected some of {PROTOCOLS}")
    with ingested_copy(source, "evaluate") as copy:
        work, dataset, notes = copy.work, copy.dataset, list(copy.notes)
        if "warm" in protocols and dataset.interactions[TIMESTAMP].nunique() <= 1:
            notes.append(NO_TIME_NOTE)
        results = []
        for protocol in protocols:
            split = protocol_split(protocol, dataset.interactions, seed)
            run = ProtocolRun(protocol, dataset, split, source.name)
            results.append(
                run.execute(settings, source, work / protocol, served, tuning_budget_seconds)
            )
    return EvaluationReport(dataset=source.name, results=results, cold_seed=seed, notes=notes)


@dataclass(frozen=True)
class IngestedCopy:
    """``source`` ingested into ``work / "full"``: its dataset and ingestion's notes."""

    work: Path
    dataset: Dataset
    notes: tuple[str, ...]


@contextmanager
def ingested_copy(source: Path, tool: str) -> Iterator[IngestedCopy]:
    """Ingest ``source`` into a scratch directory that lives for the block, as every protocol
    run reads it (the same interactions in the same user order); a ``DataFormatError`` when
    ``source`` is missing or, naming ``tool``, not a directory."""
    if not source.exists():
        raise DataFormatError(f"{source}: no such file or directory")
    if not source.is_dir():
        raise DataFormatError(f"{source}: {tool} needs a RecBole atomic dataset directory")
    with tempfile.TemporaryDirectory(prefix="recserve-") as scratch:
        work = Path(scratch)
        report = ingest(source, work / "full")
        yield IngestedCopy(work, load_dataset(work / "full"), tuple(report.notes))


class ProtocolRun:
    """One protocol: build on the train part, answer the test users, score every method."""

    def __init__(self, protocol: str, dataset: Dataset, split: EvaluationSplit, name: str) -> None:
        self.protocol, self.dataset, self.split, self.name = protocol, dataset, split, name
        self.users = split.test_users
        self.relevant = [split.relevant[u] for u in self.users]
        interactions = dataset.interactions
        user_ids = set(dataset.users.get(USER_ID, pd.Series(dtype=str)).astype(str))
        item_ids = set(dataset.items.get(ITEM_ID, pd.Series(dtype=str)).astype(str))
        self.matrix = train_matrix(
            split.train,
            sorted(user_ids | set(interactions[USER_ID].astype(str))),
            sorted(item_ids | set(interactions[ITEM_ID].astype(str))),
        )
        profile = demographics(dataset.users) if USER_ID in dataset.users else None
        # Without any demographic field there is nothing to segment or regress on.
        self.profile = profile if profile is not None and len(profile.columns) else None
        self.head = _head_items(self.matrix)
        self.groups = self._user_groups()

    def execute(
        self, settings: Settings, source: Path, work: Path, served: ServedTopK, budget: float
    ) -> ProtocolResult:
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        train_dir = work / "source" / self.name
        _write_train_dataset(self.split, source, train_dir)
        # A private home with the SQLite online store: never the configured Redis or models.
        home = settings.model_copy(
            update={"home": work / "home", "redis_url": None, "models_dir": None}
        )
        built = build(home, train_dir, tuning_budget_seconds=budget)
        seconds["build"] = time.perf_counter() - started
        started = time.perf_counter()
        answers = served(home, self.users, K)
        seconds["serve"] = time.perf_counter() - started
        started = time.perf_counter()
        lists = {**self.baseline_lists(), SERVED: [a.items for a in answers]}
        methods = [self._score(name, recommended) for name, recommended in lists.items()]
        seconds["baselines+metrics"] = time.perf_counter() - started
        sources: dict[str, int] = {}
        for answer in answers:
            sources[answer.source] = sources.get(answer.source, 0) + 1
        return ProtocolResult(
            protocol=self.protocol,
            test_users=len(self.users),
            train_interactions=len(self.split.train),
            group_sizes={
                a: {g: int(m.sum()) for g, m in gs.items()} for a, gs in self.groups.items()
            },
            served_sources=sources,
            methods=methods,
            seconds=seconds,
            model_params=built.tuning.params.as_dict(),
        )

    def baseline_lists(self) -> dict[str, list[list[str]]]:
        matrix = self.matrix
        scorers = {"popularity": popularity(matrix)}
        if self.profile is not None and all(f in self.profile for f in SEGMENT_FIELDS):
            segment = self.profile[list(SEGMENT_FIELDS)].astype(str).agg("|".join, axis=1)
            segments = segment.where(self.profile[list(SEGMENT_FIELDS)].notna().all(axis=1))
            per_user = segments.reindex(list(matrix.user_ids)).tolist()
            scorers["segment popularity"] = segment_popularity(matrix, per_user)
        if self.protocol == "warm":
            scorers[ease_name(matrix)] = ease(matrix)
        elif self.profile is not None:
            tokens = one_hot_tokens(self.profile, matrix.user_ids)
            scorers["demographic ridge λ=100"] = demographic_ridge(matrix, tokens)
        return {name: matrix.top_k(s, self.users, K) for name, s in scorers.items()}

    def _score(self, name: str, recommended: list[list[str]]) -> MethodScores:
        metrics = user_metrics(recommended, self.relevant, K)
        tail = np.array(
            [np.mean([i not in self.head for i in r]) if r else 0.0 for r in recommended]
        )
        shown = {item for r in recommended for item in r}
        reference = ML100K_REFERENCE.get((self.protocol, name)) if self.name == "ml-100k" else None
        return MethodScores(
            name=name,
            ndcg=float(metrics.ndcg.mean()),
            recall=float(metrics.recall.mean()),
            hit_rate=float(metrics.hit.mean()),
            coverage=len(shown) / len(self.matrix.item_ids),
            long_tail_share=float(tail.mean()),
            group_ndcg=_by_group(metrics.ndcg, self.groups),
            group_long_tail=_by_group(tail, self.groups),
            reference_ndcg=reference,
        )

    def _user_groups(self) -> dict[str, dict[str, np.ndarray]]:
        """Per attribute (gender, age decade), a mask over test users for each group."""
        if self.profile is None:
            return {}
        groups = {}
        for attribute in (f for f in SEGMENT_FIELDS if f in self.profile):
            values = self.profile[attribute].reindex(self.users).fillna("unknown").to_numpy()
            groups[attribute] = {str(g): values == g for g in sorted(set(values))}
        return groups


def _by_group(
    values: np.ndarray, groups: dict[str, dict[str, np.ndarray]]
) -> dict[str, dict[str, float]]:
    return {a: {g: float(values[m].mean()) for g, m in gs.items()} for a, gs in groups.items()}


def _head_items(matrix: TrainMatrix) -> frozenset[str]:
    """The top ``HEAD_SHARE`` of items by train popularity (ties to the lower index)."""
    head = matrix.most_popular(math.ceil(HEAD_SHARE * len(matrix.item_ids)))
    return frozenset(matrix.item_ids[i] for i in head)


def _write_train_dataset(split: EvaluationSplit, source: Path, target: Path) -> None:
    """The train interactions plus the source's own ``.user``/``.item`` files, verbatim."""
    write_atomic_interactions(split.train, target / f"{target.name}.inter")
    for suffix in ("user", "item"):
        original = source / f"{source.name}.{suffix}"
        if original.is_file():
            shutil.copyfile(original, target / f"{target.name}.{suffix}")
