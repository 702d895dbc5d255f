"""``recserve evaluate --protocol repeat``: repeat mode against the anchors of next-basket
studies, on a repeat-inclusive split.

The split is the warm protocol's (per user, the last share of their interactions by time are
test), but every distinct test item is relevant, bought before or not: a shopper's next
purchases are mostly rebuys. The served model is built from the train part as ``recserve
build`` builds it and answers through the serving engine with ``repeat=true`` (``served``,
passed in because training never imports serving). Beside it:

* personal popularity: the user's own most bought items (train lines), ties to the most
  recently bought, then global popularity for users with fewer than ten items;
* popularity: distinct train buyers per item, the same list for everyone, seen items kept.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from app.artifacts import REPEAT_HYPERPARAMETERS, current_version, read_manifest
from app.data.types import EVENT_TYPE, ITEM_ID, TIMESTAMP, USER_ID, Dataset
from app.settings import Settings
from app.training.evaluate import ProtocolRun, ServedTopK
from app.training.evaluate_baselines import K, attribute_tokens_by_id
from app.training.evaluate_data import ingested_copy
from app.training.evaluate_report import EvaluationReport, MethodScores
from app.training.repeat_tuning import VALIDATION_PREFIX
from app.training.split import EvaluationSplit, warm_split

PROTOCOL = "repeat"
PERSONAL_POPULARITY = "personal popularity"
POPULARITY = "popularity"
_ROW_KEY = [USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE]  # unique per row after ingestion


def repeat_split(interactions: pd.DataFrame) -> EvaluationSplit:
    """The warm split's train rows; every user's distinct test items, repeats included."""
    train = warm_split(interactions).train
    marked = interactions[_ROW_KEY].merge(
        train[_ROW_KEY].assign(_train=True), on=_ROW_KEY, how="left"
    )
    test = marked[marked["_train"].isna()]
    relevant: dict[str, set[str]] = {}
    for user, item in zip(test[USER_ID].astype(str), test[ITEM_ID].astype(str), strict=True):
        relevant.setdefault(user, set()).add(item)
    return EvaluationSplit(
        train=train, relevant={user: frozenset(items) for user, items in relevant.items()}
    )


class RepeatRun(ProtocolRun):
    """The warm protocol's run with the repeat-inclusive truth and its own anchors."""

    def __init__(self, dataset: Dataset) -> None:
        tokens = attribute_tokens_by_id(dataset.users, dataset.user_fields, USER_ID)
        super().__init__(PROTOCOL, dataset, repeat_split(dataset.interactions), tokens)

    def baseline_methods(self) -> list[MethodScores]:
        return [self.score(name, lists, {}) for name, lists in self.baseline_lists().items()]

    def baseline_lists(self) -> dict[str, list[list[str]]]:
        train = self.split.train
        buyers = train.groupby(ITEM_ID)[USER_ID].nunique()
        # Ties to the lower item id, as the other protocols' popularity.
        popular = buyers.reset_index().sort_values([USER_ID, ITEM_ID], ascending=[False, True])
        top = [str(i) for i in popular[ITEM_ID].head(K)]
        fill = [str(i) for i in popular[ITEM_ID].head(2 * K)]
        pairs = train.groupby([USER_ID, ITEM_ID]).agg(
            lines=(TIMESTAMP, "size"), last=(TIMESTAMP, "max")
        )
        ranked = pairs.reset_index().sort_values(
            [USER_ID, "lines", "last", ITEM_ID], ascending=[True, False, False, True]
        )
        own = {
            str(user): [str(i) for i in items.head(K)]
            for user, items in ranked.groupby(USER_ID)[ITEM_ID]
        }
        personal = []
        for user in self.users:
            mine = own.get(user, [])
            personal.append([*mine, *[i for i in fill if i not in mine]][:K])
        return {PERSONAL_POPULARITY: personal, POPULARITY: [top] * len(self.users)}


def evaluate_repeat(
    settings: Settings,
    source: Path,
    served: ServedTopK,
    *,
    tuning_budget_seconds: float | None = None,
) -> EvaluationReport:
    """Evaluate repeat mode (``served`` answers with ``repeat=true``) and the anchors."""
    with ingested_copy(source, "evaluate") as copy:
        run = RepeatRun(copy.dataset)
        work = copy.work / PROTOCOL
        result = run.execute(settings, source, work, served, tuning_budget_seconds)
        models = settings.embedded_at(work / "home").model_root
        version = current_version(models)
        notes = list(copy.notes)
        if version is not None:
            manifest = read_manifest(models / version)
            repeat = manifest.hyperparameters.get(REPEAT_HYPERPARAMETERS)
            result = replace(result, model_params={**result.model_params, PROTOCOL: repeat})
            notes.append(_scorer_validation(manifest.offline_metrics))
    shares = [len(r) for r in run.relevant]
    notes.append(
        f"repeat-inclusive truth: every distinct test item counts, bought before or not "
        f"({float(np.mean(shares)):.1f} relevant items per test user on average)"
    )
    return EvaluationReport(dataset=source.name, results=[result], notes=notes)


def _scorer_validation(metrics: dict[str, float]) -> str:
    """The build's validation NDCG@10 of each repeat scorer, as a report note."""
    scorers = {
        "personal frequency": metrics.get(f"{VALIDATION_PREFIX}_personal_frequency"),
        "tuned frequency score": metrics.get(f"{VALIDATION_PREFIX}_frequency_scorer"),
        "learned scorer": metrics.get(f"{VALIDATION_PREFIX}_learned_scorer"),
        "served blend": metrics.get(f"{VALIDATION_PREFIX}_blend"),
    }
    known = {name: value for name, value in scorers.items() if value is not None}
    figures = ", ".join(f"{name} {value:.4f}" for name, value in known.items())
    return f"repeat scorers on the build's validation split (NDCG@10, repeat-inclusive): {figures}"
