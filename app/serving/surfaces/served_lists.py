"""Lists served to a user under their experiment variant.

Every surface that shows a user a list runs the same sequence: assign the user to an
experiment variant, make the list with that variant's strategy, record the exposure (so the
experiment's report counts it), and explain the list when asked. Written once here, so
``/recommend``, the content blocks and the operator console cannot drift apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

from app.experiments.assignment import Assignment
from app.monitoring.answers import AnswerMonitor
from app.monitoring.drift import SampledAnswer
from app.monitoring.quality import AnswerLabels
from app.serving.experiments.service import ExperimentService, ExperimentTag
from app.serving.experiments.strategies import StrategyRecommender
from app.serving.recommend.engine import RecommendationEngine
from app.serving.surfaces.content_blocks import Block, ContentBlocks
from app.serving.surfaces.explain import Explanations, explain_recommendation, item_level_only
from app.serving.types import FallbackReason, Recommendation, RecommendRequest, Source


@dataclass(frozen=True, slots=True)
class ServedRecommendation:
    recommendation: Recommendation
    tag: ExperimentTag  # the recommendation id, and the variant when the user is in one
    explained: Explanations | None  # None: no explanation was asked for


@dataclass(frozen=True, slots=True)
class PreviewedRecommendation:
    assignment: Assignment | None
    recommendation: Recommendation
    explained: Explanations


class ServedLists:
    """Assignment, strategy, exposure and explanation around the engine's lists."""

    def __init__(
        self,
        engine: RecommendationEngine,
        experiments: ExperimentService,
        recommender: StrategyRecommender,
        blocks: ContentBlocks,
        monitor: AnswerMonitor | None = None,
    ) -> None:
        self._engine = engine
        self._monitor = monitor
        self._experiments = experiments
        self._recommender = recommender
        self._blocks = blocks

    async def recommend(
        self,
        request: RecommendRequest,
        *,
        segment: str | None,
        device: str | None,
        explain: bool,
        profile_visible: bool,
    ) -> ServedRecommendation:
        """The user's list from their variant's strategy, its exposure recorded. The
        explanation names the user's history and attributes only when ``profile_visible``
        (the caller is entitled to them), else it stays at item level."""
        if explain:  # computed afresh and not cached: the explanation must describe this answer
            request = replace(request, use_cache=False)
        assignment = await self._experiments.assign(request.user_id, segment=segment, device=device)
        rec = await self._recommender.recommend(request, assignment)
        item_ids = [item.item_id for item in rec.items]
        tag = await self._experiments.record(assignment, rec.user_id, item_ids)
        if self._monitor is not None:
            self._monitor.answered(
                tag.recommendation_id,
                AnswerLabels.of(
                    rec.model_version, rec.source.value, rec.segment or segment, device
                ),
                item_ids,
                SampledAnswer(
                    rec.items[0].score if rec.items else None,
                    fallback=rec.source is Source.POPULAR,
                    unknown_user=rec.fallback_reason is FallbackReason.UNKNOWN_USER,
                ),
            )
        explained = None
        if explain:
            explained = await self._explain(request, rec)
            if not profile_visible:
                explained = item_level_only(explained)
        return ServedRecommendation(rec, tag, explained)

    async def preview(self, request: RecommendRequest) -> PreviewedRecommendation:
        """The list the API would serve the user, explained, with no exposure recorded:
        operators' lookups must not count in experiment reports."""
        assignment = await self._experiments.assign(request.user_id, segment=None, device=None)
        rec = await self._recommender.recommend(request, assignment)
        return PreviewedRecommendation(assignment, rec, await self._explain(request, rec))

    async def content_blocks(
        self,
        slot_ids: Sequence[str],
        user_id: str,
        *,
        device: str | None,
        use_cache: bool,
        profile_visible: bool,
    ) -> list[Block]:
        """The slots filled for the user's variant; ``UnknownSlotError`` for an undeclared
        slot. Titles name the user's items only when ``profile_visible``. Nothing is recorded
        yet: see ``record_blocks``."""
        assignment = await self._experiments.assign(user_id, segment=None, device=device)
        return await self._blocks.fill(
            slot_ids, user_id, assignment, use_cache=use_cache, name_history=profile_visible
        )

    async def record_blocks(self, blocks: Sequence[Block], user_id: str) -> list[ExperimentTag]:
        """The exposures of ``blocks``, one tag per block, once the client is shown them (a
        client that already holds the same content keeps its earlier recommendation ids)."""
        return [
            await self._experiments.record(
                block.assignment, user_id, [item.display.item_id for item in block.items]
            )
            for block in blocks
        ]

    async def _explain(self, request: RecommendRequest, rec: Recommendation) -> Explanations:
        # Explaining reads the user's features from the online store: off the event loop.
        engine = self._engine
        return await asyncio.to_thread(
            explain_recommendation, engine.model, engine.features, request, rec
        )
