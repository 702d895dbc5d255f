"""The challenger beside the champion: each worker loads the version ``CHALLENGER`` names and
serves it to a share of the users through an experiment of its own.

The rollout's experiment (``rollout-<challenger version>``) goes first, ahead of the configured
experiments. It enrols ``2·share`` of the users (all of them above a share of 0.5) and splits
them between the champion (``CURRENT``) and the challenger, so the challenger serves ``share``
of all users and the champion's arm is as large as it can be: both arms are measured with the
same assignment, exposures and attribution as any experiment, and the rollout job
(``app.rollout.job``) reads their counters. When the pointer goes (promotion or rollback) the
experiment and the challenger's engine go too.

Memory: the challenger is a second ``LoadedModel`` in every worker, the size of one model
(its weights file is memory-mapped: the page cache holds one copy for all workers, each
worker adds its id maps and the session's own buffers; docs/operations.md has the figures).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from app.artifacts import PublicationError, challenger_version
from app.experiments.config import Experiment, ModelStrategy, Variant
from app.observability import metrics
from app.serving.experiments.service import ExperimentService
from app.serving.experiments.strategies import StrategyRecommender
from app.serving.model.ranking import ModelLoadError, load_model
from app.serving.recommend.engine import RecommendationEngine
from app.serving.recommend.model_reload import check_compatible

log = logging.getLogger(__name__)

ROLLOUT_PREFIX = "rollout-"
CHAMPION_ARM = "champion"
CHALLENGER_ARM = "challenger"


def rollout_id(challenger: str) -> str:
    """The id of the challenger's rollout and of its experiment."""
    return f"{ROLLOUT_PREFIX}{challenger}"


def rollout_experiment(challenger: str, share: float, alpha: float, effect: float) -> Experiment:
    """The experiment that serves ``challenger`` to ``share`` of all users."""
    return Experiment(
        id=rollout_id(challenger),
        traffic_share=min(1.0, 2 * share),
        variants=[
            Variant(
                name=CHAMPION_ARM,
                weight=min(share, 1 - share),
                strategy=ModelStrategy(kind="model"),
            ),
            Variant(
                name=CHALLENGER_ARM,
                weight=share,
                strategy=ModelStrategy(kind="model", model_version=challenger),
            ),
        ],
        control=CHAMPION_ARM,
        min_detectable_effect=effect,
        alpha=alpha,
    )


class ChallengerServing:
    """Keeps one worker's challenger in step with the ``CHALLENGER`` pointer."""

    def __init__(
        self,
        engine: RecommendationEngine,
        experiments: ExperimentService,
        recommender: StrategyRecommender,
        models_root: Path,
        *,
        share: float,
        alpha: float,
        effect: float,
    ) -> None:
        self._engine = engine
        self._experiments = experiments
        self._recommender = recommender
        self._root = models_root
        self._share = share
        self._alpha = alpha
        self._effect = effect
        self._serving: str | None = None
        self._refused: tuple[str, str] | None = None

    @property
    def challenger(self) -> str | None:
        """The challenger version this worker serves, None when there is none."""
        return self._serving

    def refusal(self, version: str) -> str | None:
        """Why this worker refused to serve ``version`` as the challenger, None if it did not."""
        if self._refused is not None and self._refused[0] == version:
            return self._refused[1]
        return None

    async def refresh(self) -> str | None:
        """Load, swap or drop the challenger as the pointer says; the version served after."""
        try:
            wanted = challenger_version(self._root)
        except (OSError, PublicationError) as exc:
            log.error("cannot read the CHALLENGER pointer, challenger dropped: %s", exc)
            wanted = None
        if wanted == self._serving:
            return wanted
        if self._serving is not None:
            self._experiments.set_rollout(None)
            self._recommender.unpin(self._serving)
            log.info("challenger %s no longer served", self._serving)
            self._serving = None
            metrics.ROLLOUT_CHALLENGER_SERVED.set(0)
        if wanted is None or self.refusal(wanted) is not None:
            return None
        try:
            model = await asyncio.to_thread(load_model, self._root / wanted)
            check_compatible(self._engine.model, model)
        except ModelLoadError as exc:
            self._refused = (wanted, str(exc))
            metrics.MODEL_RELOADS.labels("refused").inc()
            log.error("challenger %s refused: %s", wanted, exc)
            return None
        self._recommender.pin(model)
        self._experiments.set_rollout(
            rollout_experiment(wanted, self._share, self._alpha, self._effect)
        )
        self._serving = wanted
        metrics.ROLLOUT_CHALLENGER_SERVED.set(1)
        log.info("challenger %s serves %.0f%% of users", wanted, 100 * self._share)
        return wanted

    async def poll(self, interval_seconds: float) -> None:
        """``refresh`` every ``interval_seconds``; runs until cancelled."""
        while True:
            try:
                await self.refresh()
            except Exception:  # the poll must outlive any surprise
                log.exception("challenger poll failed")
            await asyncio.sleep(interval_seconds)
