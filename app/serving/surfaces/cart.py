"""Complementary items answered inside ``POST /events`` for its cart and purchase events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.events.schemas import CartRecommendations, ComplementaryItem, EventBatchOut
from app.serving.recommend.engine import RecommendationEngine
from app.serving.surfaces.complementary import complementary_items

TRIGGER_TYPES = frozenset({"add_to_cart", "purchase"})


async def cart_recommendations(
    engine: RecommendationEngine, raw: Sequence[dict[str, Any]], outcome: EventBatchOut, k: int
) -> list[CartRecommendations]:
    """Per user with a stored (new or duplicate) cart/purchase event in ``raw``: items related
    to those triggers, excluding the user's history as the online store now holds it (not read
    without consent to personalisation: the list then rests on the request alone)."""
    stored = set(outcome.accepted) | set(outcome.duplicates)
    triggers: dict[str, list[str]] = {}
    for event in raw:
        if event.get("event_id") in stored and event.get("type") in TRIGGER_TYPES:
            items = triggers.setdefault(str(event["user_id"]), [])
            if event["item_id"] not in items:
                items.append(str(event["item_id"]))
    answers = []
    for user_id, items in triggers.items():
        history = await engine.history(user_id)
        if engine.rules is None:
            related = complementary_items(engine.model, items, history, k)
        else:  # every candidate: items the business rules drop leave room for others
            candidates = complementary_items(engine.model, items, history, engine.model.n_items)
            related = engine.rules.keep(candidates, k)
        answers.append(
            CartRecommendations(
                user_id=user_id,
                trigger_items=items,
                items=[ComplementaryItem(item_id=i.item_id, score=i.score) for i in related],
            )
        )
    return answers
