"""The feedback records and the store contract both backends follow
(``tests/feedback/test_store_contract.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class FeedbackUnavailable(Exception):
    """The feedback store cannot be reached; nothing was stored or read."""


class FeedbackKind(StrEnum):
    NOT_INTERESTED = "not_interested"
    RATING = "rating"


class FeedbackTarget(StrEnum):
    ITEM = "item"
    CATEGORY = "category"  # "not interested" only
    LIST = "list"  # a served list, by its recommendation id; ratings only


@dataclass(frozen=True, slots=True)
class Feedback:
    """One statement of a user (``user_key`` is their pseudonym) about ``target_id``."""

    user_key: str
    kind: FeedbackKind
    target: FeedbackTarget
    target_id: str
    at: float  # Unix seconds
    rating: int | None = None  # 1..5 for a rating


@dataclass(frozen=True, slots=True)
class NotInterested:
    """What a user said they do not want to see."""

    items: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.items or self.categories)


NOTHING = NotInterested()


class FeedbackStore(Protocol):
    async def record(self, feedback: Feedback) -> None:
        """Store ``feedback`` durably."""
        ...

    async def not_interested(self, user_key: str) -> NotInterested:
        """The items and categories ``user_key`` is not interested in (on the request path)."""
        ...

    async def entries(self, user_key: str) -> list[Feedback]:
        """Everything ``user_key`` said, oldest first (for export)."""
        ...

    async def erase(self, user_key: str) -> int:
        """Delete everything ``user_key`` said; how many entries were deleted."""
        ...

    async def close(self) -> None: ...
