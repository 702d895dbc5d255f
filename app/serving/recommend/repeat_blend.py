"""Repeat mode (``/recommend?repeat=true``): the user's likely rebuys blended with the
model's unseen recommendations (the exploration list).

Rebuy candidates are the user's items in the repeat model's row that are still in their
online history (an erased and returning user's old row never resurfaces), then the history
items bought since the build, newest first, just below the row's weakest. The exploration
item at rank ``j`` scores ``exploration_weight / (1 + j)`` against rebuy scores in
``(0, 1]``; the weight was decided on validation at build time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from app.serving.model.ranking import LoadedModel
from app.serving.model.repeat_index import RepeatIndex
from app.serving.types import ScoredItem

# Each history item bought since the build scores this share of the one before it.
NEW_REBUY_DECAY = 0.5

Allowed = Callable[[list[str]], list[str]]


def rebuy_candidates(
    model: LoadedModel,
    index: RepeatIndex,
    user_key: str | None,
    history: Sequence[str],
    exclude: Collection[str],
    limit: int,
) -> list[ScoredItem]:
    """Up to ``limit`` of the user's items, most likely rebuy first, none in ``exclude``.
    ``user_key``: the user's pseudonym, which keys the repeat model's rows (None: no row is
    read, the history alone answers)."""
    owned = set(history)
    items, scores = index.rebuys(user_key)
    item_ids = model.item_ids
    ranked = [
        ScoredItem(item_ids[i], s)
        for i, s in zip(items.tolist(), scores.tolist(), strict=True)
        if item_ids[i] in owned and item_ids[i] not in exclude
    ]
    in_row = {item_ids[i] for i in items.tolist()}
    score = min((c.score for c in ranked), default=1.0)
    for item_id in reversed(history):
        if len(ranked) >= limit:
            break
        if item_id not in in_row and item_id not in exclude:
            score *= NEW_REBUY_DECAY
            ranked.append(ScoredItem(item_id, score))
    return ranked


def blend_repeats(
    model: LoadedModel,
    index: RepeatIndex,
    user_key: str | None,
    history: Sequence[str],
    exploration: Sequence[ScoredItem],
    k: int,
    exclude: Collection[str],
    allowed: Allowed | None = None,
) -> tuple[tuple[ScoredItem, ...], frozenset[str]]:
    """The best ``k`` of rebuys and exploration items, and which of them are rebuys."""
    # More candidates than k: business rules may refuse some.
    rebuys = rebuy_candidates(model, index, user_key, history, exclude, 2 * k + 10)
    if allowed is not None:
        shown = set(allowed([r.item_id for r in rebuys]))
        rebuys = [r for r in rebuys if r.item_id in shown]
    explore = [
        ScoredItem(item.item_id, index.exploration_weight / (1 + rank))
        for rank, item in enumerate(exploration)
    ]
    # Stable: on equal scores a rebuy stays ahead of an exploration item.
    merged = sorted([*rebuys[:k], *explore], key=lambda item: -item.score)[:k]
    repeats = frozenset(r.item_id for r in rebuys[:k]) & {m.item_id for m in merged}
    return tuple(ScoredItem(m.item_id, round(m.score, 6)) for m in merged), repeats
