"""The training snapshot's distributions for drift detection (``drift_reference.json``).

Measured over the last ``window`` interactions of the training data, with the same binning the
drift job applies to the last ``window`` live events (``app.monitoring.drift``), so the two
sides differ only by what changed. Items and users with no interaction before that window play
the live side's unknown ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from app.data.types import ITEM_ID, TIMESTAMP, USER_ID
from app.monitoring.drift import (
    DEFAULT_WINDOW,
    Binner,
    DriftReference,
    SampledAnswer,
    WindowEvent,
    popularity_bands,
    score_edges,
    top_categories,
)
from app.training.hybrid import HybridRecommender
from app.training.types import TrainingData

SCORED_USERS = 500  # users scored for the score deciles: enough for 10 bins, a second's work
SCORE_BLOCK = 64


def drift_reference(
    interactions: pd.DataFrame,
    category_of: Mapping[str, str],
    top_scores: Sequence[float],
    window: int = DEFAULT_WINDOW,
) -> DriftReference:
    """The reference of ``interactions`` (any order), the items' first category and the top
    scores of a sample of the model's answers (empty: no score feature). A small data set gets
    a window of a fifth of its interactions, so some history precedes it."""
    window = max(1, min(window, len(interactions) // 5))
    ordered = interactions.sort_values(TIMESTAMP, kind="stable")
    before, last = ordered.iloc[:-window], ordered.iloc[-window:]
    ranking = interactions[ITEM_ID].astype(str).value_counts(sort=True)
    bands = popularity_bands([str(item) for item in ranking.index])
    known_items = frozenset(before[ITEM_ID].astype(str))
    known_users = frozenset(before[USER_ID].astype(str))
    events = [
        WindowEvent(str(user), str(item))
        for user, item in zip(last[USER_ID], last[ITEM_ID], strict=True)
    ]
    categories = top_categories(category_of.get(event.item_id) for event in events)
    edges = score_edges(top_scores)
    binner = Binner(bands, categories, edges, category_of.get)
    histograms = binner.event_histograms(events, known_items.__contains__)
    # At training, the only fallback is a user the model has not seen (answers: window events).
    answers = [
        SampledAnswer(None, unknown, unknown)
        for unknown in (event.user_id not in known_users for event in events)
    ]
    histograms |= binner.answer_histograms(answers)
    if edges:
        scored = [SampledAnswer(score, False, False) for score in top_scores]
        histograms["score"] = binner.answer_histograms(scored)["score"]
    return DriftReference(
        window=len(events),
        popular_items=bands,
        categories=categories,
        score_edges=edges,
        histograms=histograms,
    )


def hybrid_top_scores(
    model: HybridRecommender, data: TrainingData, users: int = SCORED_USERS, seed: int = 0
) -> list[float]:
    """The best score serving would give (history excluded) to up to ``users`` random users with
    a history: the model's answers the score deciles are cut from."""
    histories = data.histories(model.params.read_items)
    tokens = data.user_token_lists()
    with_history = np.flatnonzero([len(h) > 0 for h in histories])
    chosen = np.sort(np.random.default_rng(seed).permutation(with_history)[:users])
    found: list[float] = []
    for start in range(0, len(chosen), SCORE_BLOCK):
        block = chosen[start : start + SCORE_BLOCK]
        _, scores = model.recommend([histories[u] for u in block], [tokens[u] for u in block], k=1)
        found += [float(s) for s in scores[:, 0] if np.isfinite(s)]
    return found
