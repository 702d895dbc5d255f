"""Complementary items for a cart or purchase: the real-time trigger of a cart page.

Items related to what the user just added or bought, read from the model's neighbour index
(bought/viewed together, typically next, sharing attributes). The most recent trigger counts
most, so the list follows the newest addition while still reflecting the whole cart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from app.serving.model.ranking import LoadedModel
from app.serving.types import ScoredItem

# Each older trigger's neighbours count this much less than the next newer one's.
TRIGGER_DECAY = 0.7


def complementary_items(
    model: LoadedModel, triggers: Sequence[str], exclude: Iterable[str], k: int
) -> list[ScoredItem]:
    """Up to ``k`` items related to ``triggers`` (oldest first), never a trigger nor an item of
    ``exclude``, best first. Triggers the model does not know are ignored; an empty list when
    the model has no neighbour index."""
    if model.neighbours is None:
        return []
    banned = set(exclude) | set(triggers)
    scores: dict[int, float] = {}
    weight = 1.0
    for item_id in reversed(triggers):
        row = model.item_index.get(item_id)
        if row is None:
            continue
        neighbours = model.neighbours.indices[row]
        similarities = model.neighbours.scores[row]
        for index, similarity in zip(neighbours.tolist(), similarities.tolist(), strict=True):
            if index >= 0 and model.item_ids[index] not in banned:
                scores[index] = scores.get(index, 0.0) + weight * similarity
        weight *= TRIGGER_DECAY
    best = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
    return [ScoredItem(model.item_ids[i], round(score, 6)) for i, score in best]
