"""The popularity fallback: the answer for unknown users and for any failing dependency."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from app.serving.types import ScoredItem


def popular_items(
    popular: Sequence[str], k: int, exclude: Collection[str]
) -> tuple[ScoredItem, ...]:
    """The first ``k`` popular items not in ``exclude``; the score falls with the rank."""
    chosen: list[ScoredItem] = []
    n = max(len(popular), 1)
    for rank, item_id in enumerate(popular):
        if item_id in exclude:
            continue
        chosen.append(ScoredItem(item_id, round(1.0 - rank / n, 6)))
        if len(chosen) == k:
            break
    return tuple(chosen)
