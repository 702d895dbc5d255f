"""A synthetic shop population for drift tests: users with category preferences, items with a
Zipf popularity inside their category, and a model whose top scores are normally spread.

``shift`` changes what the population does mid-run: half the users adopt new preferred
categories, new items (unknown to the model) take a share of the interactions, new users
arrive, and the model is less sure of the shifted tastes (lower top scores).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from app.monitoring.drift import Binner, DriftReference, SampledAnswer, WindowEvent
from app.monitoring.snapshot import ReferenceSnapshot
from app.training.drift_reference import drift_reference

CATEGORIES = 12
ITEMS_PER_CATEGORY = 40
USERS = 1_500
NEW_ITEMS = 60  # appear only after the shift
SCORE_MEAN, SCORE_SD = 0.6, 0.1


@dataclass
class Population:
    rng: np.random.Generator
    preferences: np.ndarray  # users x categories, rows sum to 1
    activity: np.ndarray  # users, sums to 1
    item_weights: np.ndarray  # per category, ITEMS_PER_CATEGORY, sums to 1
    shifted: bool = False
    new_users: list[str] = field(default_factory=list)

    @classmethod
    def seeded(cls, seed: int) -> Population:
        rng = np.random.default_rng(seed)
        preferences = rng.dirichlet(np.full(CATEGORIES, 0.3), size=USERS)
        activity = rng.lognormal(0, 1, USERS)
        zipf = 1 / np.arange(1, ITEMS_PER_CATEGORY + 1) ** 1.1
        return cls(rng, preferences, activity / activity.sum(), zipf / zipf.sum())

    def shift(self) -> None:
        movers = self.rng.random(USERS) < 0.5
        trend = np.full(CATEGORIES, 0.05)
        trend[:3] = 3.0  # a trend: three categories take most of the movers' interest
        self.preferences[movers] = self.rng.dirichlet(trend, size=int(movers.sum()))
        self.shifted = True

    def events(self, n: int) -> list[WindowEvent]:
        rng = self.rng
        users = rng.choice(USERS, size=n, p=self.activity)
        cumulative = np.cumsum(self.preferences[users], axis=1)
        categories = (cumulative < rng.random((n, 1))).sum(axis=1).clip(max=CATEGORIES - 1)
        items = rng.choice(ITEMS_PER_CATEGORY, size=n, p=self.item_weights)
        user_ids = [f"u{user}" for user in users]
        item_ids = [item_id(c, i) for c, i in zip(categories, items, strict=True)]
        if self.shifted:  # newcomers and new items, both unknown to the model
            for row in np.flatnonzero(rng.random(n) < 0.1):
                user_ids[row] = f"new{rng.integers(0, 2_000)}"
            for row in np.flatnonzero(rng.random(n) < 0.15):
                item_ids[row] = f"new-item{rng.integers(NEW_ITEMS)}"
        return [WindowEvent(u, i) for u, i in zip(user_ids, item_ids, strict=True)]

    def answers(self, events: list[WindowEvent]) -> list[SampledAnswer]:
        """One answer per event's user: newcomers get the popularity fallback."""
        mean = SCORE_MEAN - (0.12 if self.shifted else 0.0)
        found = []
        for event in events:
            unknown = event.user_id.startswith("new")
            score = None if unknown else float(self.rng.normal(mean, SCORE_SD))
            found.append(SampledAnswer(score, fallback=unknown, unknown_user=unknown))
        return found

    def model_scores(self, n: int = 500) -> list[float]:
        return [float(s) for s in self.rng.normal(SCORE_MEAN, SCORE_SD, n)]


def item_id(category: int, item: int) -> str:
    return f"c{category}-i{item}"


def category_of(item: str) -> str | None:
    return item.split("-")[0] if item.startswith("c") else None


def known_items() -> frozenset[str]:
    return frozenset(item_id(c, i) for c in range(CATEGORIES) for i in range(ITEMS_PER_CATEGORY))


def training_snapshot(population: Population, interactions: int) -> ReferenceSnapshot:
    """The reference the build would write for ``interactions`` events of the population."""
    events = population.events(interactions)
    frame = pd.DataFrame(
        {
            "user_id": [e.user_id for e in events],
            "item_id": [e.item_id for e in events],
            "timestamp": np.arange(len(events), dtype=np.int64),
        }
    )
    categories = {item: category_of(item) or "" for item in known_items()}
    reference: DriftReference = drift_reference(frame, categories, population.model_scores())
    binner = Binner.of(reference, category_of)
    return ReferenceSnapshot(Path("simulated"), reference, binner, known_items())
