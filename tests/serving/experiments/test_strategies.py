"""Experiment strategies on the real engine (built model, SQLite Feast, in-process cache)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from app.bootstrap import build_engine, close_engine
from app.experiments.assignment import Assignment
from app.experiments.config import (
    CandidateMixStrategy,
    DiversifiedStrategy,
    ExperimentConfigError,
    ModelStrategy,
    PopularStrategy,
)
from app.serving.experiments.diversify import mmr_rerank
from app.serving.experiments.strategies import (
    StrategyRecommender,
    interleave,
    load_experiment_setup,
)
from app.serving.model.ranking import LoadedModel
from app.serving.recommend.engine import RecommendationEngine
from app.serving.types import RecommendRequest, ScoredItem, Source
from app.settings import Settings
from tests.integration.conftest import users_with_history

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def user(built_home: Settings) -> str:
    return users_with_history(built_home)[0]


@pytest.fixture
async def engine(built_home: Settings) -> AsyncIterator[RecommendationEngine]:
    engine = await build_engine(built_home)
    yield engine
    await close_engine(engine)


def _mean_similarity(model: LoadedModel, items: tuple[ScoredItem, ...]) -> float:
    """Mean neighbour-index score over the pairs of a list (0 when neither lists the other)."""
    assert model.neighbours is not None
    rows = [model.item_index[i.item_id] for i in items]
    total = 0.0
    for a, b in combinations(rows, 2):
        for x, y in ((a, b), (b, a)):
            hits = np.flatnonzero(model.neighbours.indices[x] == y)
            total += float(model.neighbours.scores[x, hits[0]]) if hits.size else 0.0
    return total / len(list(combinations(rows, 2)))


async def test_mmr_trades_relevance_for_diversity(engine: RecommendationEngine, user: str) -> None:
    pool = await engine.recommend(RecommendRequest(user, 30, use_cache=False))
    relevance_only = mmr_rerank(engine.model, pool.items, 10, lambda_=1.0)
    diversified = mmr_rerank(engine.model, pool.items, 10, lambda_=0.3)

    assert [i.item_id for i in relevance_only] == [i.item_id for i in pool.items[:10]]
    assert len({i.item_id for i in diversified}) == 10
    assert {i.item_id for i in diversified} <= {i.item_id for i in pool.items}
    assert diversified[0].item_id == pool.items[0].item_id  # nothing picked yet: pure relevance
    assert [i.score for i in diversified] == sorted((i.score for i in diversified), reverse=True)
    assert _mean_similarity(engine.model, diversified) < _mean_similarity(
        engine.model, pool.items[:10]
    )


async def test_each_variant_runs_its_strategy_and_has_its_own_cache_entry(
    engine: RecommendationEngine, user: str
) -> None:
    recommender = StrategyRecommender(engine, {})
    request = RecommendRequest(user, 10)
    default = await recommender.recommend(request, None)
    control = await recommender.recommend(
        request, Assignment("ab", "control", ModelStrategy(kind="model"))
    )
    popular = await recommender.recommend(
        request, Assignment("ab", "pop", PopularStrategy(kind="popular"))
    )
    diverse = await recommender.recommend(
        request, Assignment("ab", "div", DiversifiedStrategy(kind="diversified", lambda_=0.3))
    )
    mix = await recommender.recommend(
        request,
        Assignment(
            "ab",
            "mix",
            CandidateMixStrategy(kind="candidate_mix", source_weights={"model": 1, "popular": 1}),
        ),
    )

    assert default.cache_tier is None
    assert control.cache_tier is None  # same list as the default, but never its cache entry
    assert [i.item_id for i in control.items] == [i.item_id for i in default.items]
    assert popular.source == Source.POPULAR
    assert popular.fallback_reason is None
    history = set(engine.features.get_user(user).history_items)  # type: ignore[union-attr]
    assert not {i.item_id for i in popular.items} & history
    assert [i.item_id for i in diverse.items] != [i.item_id for i in default.items]
    assert len({i.item_id for i in mix.items}) == 10
    # Model turns take the model's list in order, skipping what a popular turn took first.
    model_turns = [i.item_id for i in mix.items[::2]]
    popular_turns = {i.item_id for i in mix.items[1::2]}
    default_ids = [i.item_id for i in default.items]
    reached = default_ids[: default_ids.index(model_turns[-1]) + 1]
    assert [i for i in reached if i not in popular_turns] == model_turns
    assert not {i.item_id for i in mix.items} & history

    again = await recommender.recommend(
        request, Assignment("ab", "div", DiversifiedStrategy(kind="diversified", lambda_=0.3))
    )
    assert again.cache_tier == "local"
    assert again.items == diverse.items


def test_interleave_follows_the_weights_without_repeats() -> None:
    a = [ScoredItem(f"a{i}", 1.0) for i in range(10)]
    b = [ScoredItem("a0", 1.0), ScoredItem("b1", 1.0), ScoredItem("b2", 1.0)]

    mixed = interleave({"model": a, "popular": b}, {"model": 2, "popular": 1}, 6)
    # 2:1 gives model, popular, model, model, popular, model; popular's "a0" is already taken.
    assert [i.item_id for i in mixed] == ["a0", "b1", "a1", "a2", "b2", "a3"]

    exhausted = interleave({"model": a[:2], "popular": b}, {"model": 1, "popular": 1}, 10)
    assert [i.item_id for i in exhausted] == ["a0", "b1", "a1", "b2"]


def test_setup_refuses_unknown_sources_and_missing_pinned_models(
    built_home: Settings, tmp_path: Path
) -> None:
    config = tmp_path / "experiments.toml"
    config.write_text(
        """
[[experiments]]
id = "bad"
traffic_share = 1.0
control = "a"
min_detectable_effect = 0.1
[[experiments.variants]]
name = "a"
weight = 1
strategy = { kind = "model", model_version = "no-such-version" }
[[experiments.variants]]
name = "b"
weight = 1
strategy = { kind = "candidate_mix", source_weights = { model = 1, trending = 1 } }
"""
    )
    with pytest.raises(ExperimentConfigError) as error:
        load_experiment_setup(config, built_home.model_root)
    message = str(error.value)
    assert "experiments[bad].variants[a].strategy.model_version: cannot load model" in message
    assert "experiments[bad].variants[b].strategy.source_weights: unknown source(s) trending" in (
        message
    )
    assert load_experiment_setup(None, built_home.model_root) == ((), {})
