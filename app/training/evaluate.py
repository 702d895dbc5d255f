"""``recserve evaluate``: the product's offline numbers, beside tuned baselines.

The source is ingested once. For each protocol (``split.py``: warm, and the cold protocol
over ``cold_draws`` draws of users, seeds 0 .. N-1) the train part is written as a RecBole
dataset and built exactly as ``recserve build`` builds it (ingest, Feast features, tuning,
ONNX export) into a throw-away home; the test users are then answered by the serving engine
``/recommend`` uses, passed in as ``served`` because training code never imports serving.
Every baseline is tuned on a validation split of the same train part
(``evaluate_baselines``) and asked through the recommender contract; all lists are scored
by the same metric functions (``metrics``).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.data.types import TIMESTAMP, USER_ID, Dataset
from app.settings import Settings
from app.training.baselines import SEGMENT_FIELDS
from app.training.evaluate_baselines import (
    K,
    UserFeatures,
    attribute_tokens_by_id,
    baseline_training_data,
    tuned_baselines,
)
from app.training.evaluate_data import ingested_copy, write_train_dataset
from app.training.evaluate_report import (
    SERVED,
    EvaluationReport,
    MethodScores,
    ProtocolResult,
)
from app.training.metrics import user_metrics
from app.training.pipeline import build
from app.training.recommender import Recommender, recommend_in_blocks
from app.training.split import EvaluationSplit, protocol_split

HEAD_SHARE = 0.2  # items outside the top 20% by train popularity are the long tail
PROTOCOLS = ("warm", "cold")
# Cold draws use seeds 0 .. N-1: a rule fixed in advance, never a seed picked by its figures.
DEFAULT_COLD_DRAWS = 10
NO_TIME_NOTE = (
    "every interaction has the same timestamp: with no order to hold out by, the warm split "
    "holds out a seeded random 20% of each user's interactions, so the warm figures measure "
    "filling in a history, not predicting what comes next"
)


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
    cold_draws: int = DEFAULT_COLD_DRAWS,
    tuning_budget_seconds: float | None = None,
) -> EvaluationReport:
    """Evaluate the served model and the baselines on ``source`` (a RecBole atomic dir)."""
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocol(s) {unknown}; expected some of {PROTOCOLS}")
    if cold_draws < 1:
        raise ValueError(f"cold_draws must be >= 1, got {cold_draws}")
    started = time.perf_counter()
    with ingested_copy(source, "evaluate") as copy:
        work, dataset, notes = copy.work, copy.dataset, list(copy.notes)
        if "warm" in protocols and dataset.interactions[TIMESTAMP].nunique() <= 1:
            notes.append(NO_TIME_NOTE)
        tokens = attribute_tokens_by_id(dataset.users, dataset.user_fields, USER_ID)
        results = []
        for protocol in protocols:
            for seed in [None] if protocol == "warm" else range(cold_draws):
                split = protocol_split(protocol, dataset.interactions, seed or 0)
                run = ProtocolRun(protocol, dataset, split, tokens, seed)
                scratch = work / f"{protocol}-{seed}"
                budget = tuning_budget_seconds
                results.append(run.execute(settings, source, scratch, served, budget))
                shutil.rmtree(scratch, ignore_errors=True)  # a build's home per draw adds up
    return EvaluationReport(
        dataset=source.name,
        results=results,
        notes=notes,
        seconds=time.perf_counter() - started,
    )


class ProtocolRun:
    """One protocol (one draw of the cold protocol): build on the train part, answer the test
    users, tune and ask every baseline, score every list the same way."""

    def __init__(
        self,
        protocol: str,
        dataset: Dataset,
        split: EvaluationSplit,
        tokens: Mapping[str, Sequence[str]],
        seed: int | None = None,
    ) -> None:
        self.protocol, self.split, self.seed = protocol, split, seed
        self.users = split.test_users
        self.relevant = [split.relevant[u] for u in self.users]
        self.train = baseline_training_data(split.train, dataset, tokens)
        self.features = UserFeatures(self.train, tokens)
        self.head = _head_items(self.train.interaction_matrix(), self.train.item_ids)
        self.groups = _user_groups(self.users, tokens)

    def execute(
        self,
        settings: Settings,
        source: Path,
        work: Path,
        served: ServedTopK,
        budget: float | None,
    ) -> ProtocolResult:
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        train_dir = work / "source" / source.name
        write_train_dataset(self.split.train, source, train_dir)
        home = settings.embedded_at(work / "home")
        built = build(home, train_dir, tuning_budget_seconds=budget)
        seconds["build"] = time.perf_counter() - started
        started = time.perf_counter()
        answers = served(home, self.users, K)
        seconds["serve"] = time.perf_counter() - started
        started = time.perf_counter()
        methods = self.baseline_methods()
        methods.append(self.score(SERVED, [a.items for a in answers], {}))
        seconds["baselines+metrics"] = time.perf_counter() - started
        sources: dict[str, int] = {}
        for answer in answers:
            sources[answer.source] = sources.get(answer.source, 0) + 1
        return ProtocolResult(
            protocol=self.protocol,
            seed=self.seed,
            test_users=len(self.users),
            train_interactions=len(self.split.train),
            group_sizes={
                a: {g: int(m.sum()) for g, m in gs.items()} for a, gs in self.groups.items()
            },
            served_sources=sources,
            methods=methods,
            seconds=seconds,
            model_params=built.tuning.params.as_dict(),
            tuning_budget_exhausted=bool(getattr(built.tuning, "budget_exhausted", False)),
        )

    def baseline_methods(self) -> list[MethodScores]:
        """Every baseline, tuned on a validation split of the train part, scored."""
        baselines = tuned_baselines(self.protocol, self.train)
        return [self.score_baseline(b.name, b.model, b.params) for b in baselines]

    def score_baseline(
        self, name: str, model: Recommender[Any], params: dict[str, Any]
    ) -> MethodScores:
        histories, tokens = self.features.of(self.users)
        return self.score(name, recommend_in_blocks(model, histories, tokens, K), params)

    def score(
        self, name: str, recommended: list[list[str]], params: dict[str, Any]
    ) -> MethodScores:
        metrics = user_metrics(recommended, self.relevant, K)
        tail = np.array(
            [np.mean([i not in self.head for i in r]) if r else 0.0 for r in recommended]
        )
        shown = {item for r in recommended for item in r}
        return MethodScores(
            name=name,
            ndcg=float(metrics.ndcg.mean()),
            recall=float(metrics.recall.mean()),
            hit_rate=float(metrics.hit.mean()),
            coverage=len(shown) / len(self.train.item_ids),
            long_tail_share=float(tail.mean()),
            group_ndcg=_by_group(metrics.ndcg, self.groups),
            group_long_tail=_by_group(tail, self.groups),
            params=params,
        )


def _user_groups(
    users: Sequence[str], tokens: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, np.ndarray]]:
    """Per attribute (gender, age decade), a mask over the test users for each group
    ("unknown" for users without it); no attribute, no groups."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for attribute in SEGMENT_FIELDS:
        prefix = f"{attribute}="
        values = np.array(
            [
                next((t[len(prefix) :] for t in tokens.get(u, ()) if t.startswith(prefix)), "")
                or "unknown"
                for u in users
            ],
            dtype=object,
        )
        if (values != "unknown").any():
            groups[attribute] = {str(g): values == g for g in sorted(set(values))}
    return groups


def _by_group(
    values: np.ndarray, groups: dict[str, dict[str, np.ndarray]]
) -> dict[str, dict[str, float]]:
    return {a: {g: float(values[m].mean()) for g, m in gs.items()} for a, gs in groups.items()}


def _head_items(interactions: Any, item_ids: Sequence[str]) -> frozenset[str]:
    """The top ``HEAD_SHARE`` of items by train popularity (ties to the lower index)."""
    counts = np.asarray(interactions.sum(axis=0)).ravel()
    head = np.lexsort((np.arange(len(counts)), -counts))[: math.ceil(HEAD_SHARE * len(counts))]
    return frozenset(item_ids[i] for i in head)
