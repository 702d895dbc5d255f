"""Hot model reload: load the version ``CURRENT`` names, check it, then swap it in.

The candidate is loaded off the event loop (``load_model`` checks files against the manifest,
runs a probe and re-scores the probes whose reference scores the export recorded), then checked
against the served model: same artifact format, the same graph signature, and no feature the
service does not fetch. Only then does it replace the engine's model. A refused version is
remembered, logged, counted in ``recserve_model_reloads_total{outcome="refused"}`` and reported
by ``/readyz``, while the previous model keeps serving. Each worker process reloads on its own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.artifacts import FORMAT_VERSION, OUTPUT_SCORES, PublicationError, current_version
from app.observability import metrics
from app.serving.catalogue.items import load_catalogue
from app.serving.model.ranking import LoadedModel, ModelLoadError, load_model
from app.serving.recommend.engine import RecommendationEngine

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the published version (None: nothing published) is not served."""

    version: str | None
    reason: str


class ModelRefused(RuntimeError):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class ReloadResult:
    outcome: Literal["loaded", "unchanged"]
    version: str
    previous_version: str


class ModelReloader:
    """Serializes reloads of one engine's model; one per worker process."""

    def __init__(self, engine: RecommendationEngine, models_root: Path) -> None:
        self._engine = engine
        self._root = models_root
        self._lock = asyncio.Lock()
        self._refusal: Refusal | None = None

    @property
    def refusal(self) -> Refusal | None:
        """The last refusal, while the published version is still not the one served."""
        return self._refusal

    async def reload(self, *, retry_refused: bool = True) -> ReloadResult:
        """Serve the published version if it is new and passes its checks; raises
        ``ModelRefused`` otherwise. ``retry_refused=False`` (the poll) does not load a version
        that was already refused again."""
        async with self._lock:
            serving = self._engine.model
            try:
                version = current_version(self._root)
            except (OSError, PublicationError) as exc:
                unreadable = Refusal(None, f"cannot read the CURRENT pointer: {exc}")
                raise self._refuse(unreadable) from exc
            if version is None:
                raise self._refuse(Refusal(None, f"no published model under {self._root}"))
            if version == serving.version:
                self._refusal = None
                return ReloadResult("unchanged", version, version)
            if not retry_refused and self._refusal and self._refusal.version == version:
                raise ModelRefused(self._refusal)
            try:
                candidate = await asyncio.to_thread(load_model, self._root / version)
                check_compatible(serving, candidate)
                # Every file of the publication, the catalogue included: a model whose
                # catalogue cannot be read is refused, not served beside the old catalogue.
                await asyncio.to_thread(load_catalogue, self._root / version, candidate)
            except ModelLoadError as exc:
                raise self._refuse(Refusal(version, str(exc))) from exc
            self._engine.replace_model(candidate)
            self._refusal = None
            metrics.MODEL_RELOADS.labels("loaded").inc()
            log.info("model %s now serving (was %s)", version, serving.version)
            return ReloadResult("loaded", version, serving.version)

    async def poll(self, interval_seconds: float) -> None:
        """Reload whenever ``CURRENT`` changes, checking every ``interval_seconds``; runs
        until cancelled."""
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.reload(retry_refused=False)
            except ModelRefused:
                pass  # logged and counted when first refused; the old model keeps serving
            except Exception:  # the poll must outlive any surprise
                log.exception("model reload poll failed")

    def _refuse(self, refusal: Refusal) -> ModelRefused:
        if refusal != self._refusal:
            metrics.MODEL_RELOADS.labels("refused").inc()
            log.error(
                "model %s refused, still serving %s: %s",
                refusal.version,
                self._engine.model.version,
                refusal.reason,
            )
        self._refusal = refusal
        return ModelRefused(refusal)


def check_compatible(serving: LoadedModel, candidate: LoadedModel) -> None:
    """Raise ``ModelLoadError`` unless ``candidate`` can take over from ``serving``."""
    manifest = candidate.manifest
    if manifest.format_version != FORMAT_VERSION:
        raise ModelLoadError(
            f"model {manifest.version}: artifact format {manifest.format_version}, this server "
            f"reads format {FORMAT_VERSION}"
        )
    if _signature(candidate) != _signature(serving):
        raise ModelLoadError(
            f"model {manifest.version}: graph signature {_signature(candidate)} differs from "
            f"the served one {_signature(serving)}"
        )
    missing = set(manifest.feature_list) - set(serving.manifest.feature_list)
    if missing:
        raise ModelLoadError(
            f"model {manifest.version} reads features the service does not fetch: {sorted(missing)}"
        )


def _signature(model: LoadedModel) -> tuple[tuple[str, str, int], ...]:
    """Name, element type and rank of each graph input, then of the ``scores`` output."""
    session = model.session
    args = sorted(session.get_inputs(), key=lambda arg: arg.name) + [
        arg for arg in session.get_outputs() if arg.name == OUTPUT_SCORES
    ]
    return tuple((arg.name, arg.type, len(arg.shape)) for arg in args)
