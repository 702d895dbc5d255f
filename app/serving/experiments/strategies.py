"""Serve a request with the strategy of its experiment variant (or the default: the engine).

Strategies (declared in ``app.experiments.config``):

* ``model``: the engine; ``model_version`` pins a version loaded at start-up next to the
  published one (an engine of its own sharing the feature client and the cache).
* ``popular``: the popularity list, minus the user's history when their features answer.
* ``diversified``: the engine's top ``DIVERSITY_POOL_FACTOR * k`` re-ranked by MMR
  (``diversify``), cut to k.
* ``candidate_mix``: the ``model`` and ``popular`` lists interleaved in proportion to
  ``source_weights`` (smooth weighted round robin), without repeats.

Every variant's request carries a ``cache_scope`` naming the experiment and variant, so two
variants never share a cached list (nor with users outside the experiment).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from app.experiments.assignment import Assignment
from app.experiments.config import (
    CandidateMixStrategy,
    DiversifiedStrategy,
    Experiment,
    ExperimentConfigError,
    ModelStrategy,
    PopularStrategy,
    load_experiments,
)
from app.serving.experiments.diversify import mmr_rerank
from app.serving.model.ranking import LoadedModel, ModelLoadError, load_model
from app.serving.recommend.engine import RecommendationEngine
from app.serving.types import Recommendation, RecommendRequest, ScoredItem, Source

CANDIDATE_SOURCES = ("model", "popular")
DIVERSITY_POOL_FACTOR = 3
MIN_DIVERSITY_POOL = 30


def load_experiment_setup(
    experiments_file: Path | None, model_root: Path
) -> tuple[tuple[Experiment, ...], dict[str, LoadedModel]]:
    """The experiments and the pinned model versions they need, checked for what serving
    can do; ``ExperimentConfigError`` names the file and the field otherwise."""
    if experiments_file is None:
        return (), {}
    experiments = load_experiments(experiments_file)
    problems: list[str] = []
    pinned: dict[str, LoadedModel] = {}
    for experiment in experiments:
        for variant in experiment.variants:
            where = f"experiments[{experiment.id}].variants[{variant.name}].strategy"
            strategy = variant.strategy
            if isinstance(strategy, CandidateMixStrategy):
                unknown = sorted(set(strategy.source_weights) - set(CANDIDATE_SOURCES))
                if unknown:
                    problems.append(
                        f"{where}.source_weights: unknown source(s) {', '.join(unknown)} "
                        f"(known: {', '.join(CANDIDATE_SOURCES)})"
                    )
            elif isinstance(strategy, ModelStrategy) and strategy.model_version is not None:
                version = strategy.model_version
                if version not in pinned:
                    try:
                        pinned[version] = load_model(model_root / version)
                    except ModelLoadError as exc:
                        problems.append(f"{where}.model_version: {exc}")
    if problems:
        raise ExperimentConfigError(f"{experiments_file}:\n  " + "\n  ".join(problems))
    return experiments, pinned


class StrategyRecommender:
    """Answers a request with its variant's strategy; no assignment means the engine."""

    def __init__(self, engine: RecommendationEngine, pinned: Mapping[str, LoadedModel]) -> None:
        self._engine = engine
        self._pinned: dict[str, RecommendationEngine] = {}
        for model in pinned.values():
            self.pin(model)

    def pin(self, model: LoadedModel) -> None:
        """Serve ``model`` to the variants that name its version (the rollout's challenger)."""
        engine = self._engine
        self._pinned[model.version] = RecommendationEngine(
            model, engine.features, engine.cache, rules=engine.rules, consent=engine.consent
        )

    def unpin(self, version: str) -> None:
        """Let go of a version ``pin`` loaded (its memory goes with the last request using it)."""
        self._pinned.pop(version, None)

    async def recommend(
        self, request: RecommendRequest, assignment: Assignment | None
    ) -> Recommendation:
        if assignment is None:
            return await self._engine.recommend(request)
        scoped = replace(request, cache_scope=f"{assignment.experiment_id}/{assignment.variant}")
        strategy = assignment.strategy
        if isinstance(strategy, ModelStrategy):
            version = strategy.model_version
            engine = self._engine if version is None else self._pinned[version]
            return await engine.recommend(scoped)
        if isinstance(strategy, PopularStrategy):
            return await self._popular(request)
        if isinstance(strategy, DiversifiedStrategy):
            return await self._diversified(scoped, strategy.lambda_)
        return await self._mixed(scoped, strategy)

    async def _popular(self, request: RecommendRequest) -> Recommendation:
        model = self._engine.model
        # The history honours consent: a user who withheld personalisation has no profile read.
        exclude = set(request.exclude) | set(await self._engine.history(request.user_id))
        items = self._engine.popular(request.k, exclude, request.filters, model)
        return Recommendation(request.user_id, items, Source.POPULAR, model.version)

    async def _diversified(self, request: RecommendRequest, lambda_: float) -> Recommendation:
        pool_size = max(DIVERSITY_POOL_FACTOR * request.k, MIN_DIVERSITY_POOL)
        pool = await self._engine.recommend(replace(request, k=pool_size))
        if pool.fallback_reason is not None:  # the popular fallback: nothing to diversify
            return replace(pool, items=pool.items[: request.k])
        items = mmr_rerank(self._engine.model, pool.items, request.k, lambda_)
        return replace(pool, items=items)

    async def _mixed(
        self, request: RecommendRequest, strategy: CandidateMixStrategy
    ) -> Recommendation:
        ranked = await self._engine.recommend(request)
        sources = {"model": ranked.items, "popular": (await self._popular(request)).items}
        weights = {name: strategy.source_weights.get(name, 0.0) for name in CANDIDATE_SOURCES}
        return replace(ranked, items=interleave(sources, weights, request.k))


def interleave(
    sources: Mapping[str, Sequence[ScoredItem]], weights: Mapping[str, float], k: int
) -> tuple[ScoredItem, ...]:
    """Up to ``k`` distinct items drawn from the sources in proportion to their weights.

    Smooth weighted round robin: every turn each source earns its weight in credit, the
    richest takes its next unused item and pays the total. Deterministic and evenly spread
    (weights 2:1 give a, b, a, a, b, a...). Scores fall with the rank, like the popular list.
    """
    cursors = {name: 0 for name, weight in weights.items() if weight > 0 and sources.get(name)}
    credit = dict.fromkeys(cursors, 0.0)
    chosen: list[str] = []
    seen: set[str] = set()
    while len(chosen) < k and cursors:
        total = sum(weights[name] for name in cursors)
        for name in cursors:
            credit[name] += weights[name]
        turn = max(cursors, key=lambda name: credit[name])
        credit[turn] -= total
        items = sources[turn]
        while cursors[turn] < len(items) and items[cursors[turn]].item_id in seen:
            cursors[turn] += 1
        if cursors[turn] >= len(items):
            del cursors[turn], credit[turn]
            continue
        item_id = items[cursors[turn]].item_id
        cursors[turn] += 1
        seen.add(item_id)
        chosen.append(item_id)
    return tuple(
        ScoredItem(item_id, round(1.0 - rank / max(k, 1), 6)) for rank, item_id in enumerate(chosen)
    )
