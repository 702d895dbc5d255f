"""Precompute for peaks: in quiet hours, the lists the most active users are likely to ask for
at the next peak, computed by the very code that serves them and stored in the shared cache.

Each user gets, for their experiment variant (assigned as a request without targeting
context would be), the ``/recommend`` list at each configured k and the configured content
block pages. The engine the job runs on writes through ``cache.precomputed.PrecomputeTier``,
so the lists land under the keys a request looks up, and the user's next event or feedback
drops them like any cached list.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.serving.cache.precomputed import PrecomputeTier
from app.serving.experiments.service import ExperimentService
from app.serving.experiments.strategies import StrategyRecommender
from app.serving.surfaces.content_blocks import ContentBlocks
from app.serving.types import RecommendRequest


def in_quiet_hours(now: datetime, start_hour: int, end_hour: int) -> bool:
    """Whether ``now`` (UTC) falls in [start_hour, end_hour); a window whose end is below its
    start runs past midnight, and equal hours mean none."""
    hour = now.hour
    if start_hour <= end_hour:
        return start_hour <= hour < end_hour
    return hour >= start_hour or hour < end_hour


def page_slots(page: str) -> list[str]:
    """A page's slot ids as a client sends them, ``"a,b"``."""
    return [slot.strip() for slot in page.split(",") if slot.strip()]


@dataclass(frozen=True, slots=True)
class PrecomputeReport:
    users: int
    lists: int  # /recommend answers computed
    pages: int  # content block pages filled
    stored: int  # cache entries written (fallback answers are never cached)
    failed: int  # cache entries the shared tier did not take
    seconds: float

    def format(self) -> str:
        return (
            f"precomputed {self.lists} lists and {self.pages} pages for {self.users} users "
            f"in {self.seconds:.1f}s: {self.stored} cache entries stored, {self.failed} failed"
        )


class PeakPrecompute:
    """Fills ``tier``, the cache of the engine under ``recommender`` and ``blocks``."""

    def __init__(
        self,
        experiments: ExperimentService,
        recommender: StrategyRecommender,
        blocks: ContentBlocks,
        tier: PrecomputeTier,
    ) -> None:
        self._experiments = experiments
        self._recommender = recommender
        self._blocks = blocks
        self._tier = tier

    async def run(
        self, user_ids: Sequence[str], ks: Sequence[int], pages: Sequence[str]
    ) -> PrecomputeReport:
        """Compute every user's lists; raises ``UnknownSlotError`` for a page naming a slot
        the slots file lacks (checked before any work)."""
        page_ids = [page_slots(page) for page in pages]
        for slots in page_ids:
            for slot_id in slots:
                self._blocks.slot(slot_id)
        started = time.perf_counter()
        lists = filled = 0
        for user_id in user_ids:
            assignment = await self._experiments.assign(user_id, segment=None, device=None)
            for k in ks:
                await self._recommender.recommend(RecommendRequest(user_id, k), assignment)
                lists += 1
            for slots in page_ids:
                await self._blocks.fill(slots, user_id, assignment)
                filled += 1
        tier = self._tier
        return PrecomputeReport(
            len(user_ids), lists, filled, tier.stored, tier.failed, time.perf_counter() - started
        )
