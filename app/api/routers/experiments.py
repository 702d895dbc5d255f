"""``/experiments``: the configured A/B experiments and their reports."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException

from app.api.deps import ExperimentsDep
from app.api.schemas.experiments import ExperimentOut, ExperimentsOut, VariantOut
from app.experiments.assignment import is_running
from app.experiments.attribution import ExposureStoreUnavailable
from app.experiments.config import Experiment
from app.experiments.report import ExperimentReport

router = APIRouter(tags=["experiments"])


@router.get(
    "/experiments",
    response_model=ExperimentsOut,
    summary="List the configured experiments",
    description="The experiments of `RECSERVE_EXPERIMENTS_FILE`, as validated at start-up.",
)
async def list_experiments(experiments: ExperimentsDep) -> ExperimentsOut:
    now = datetime.now(UTC)
    return ExperimentsOut(experiments=[_summary(e, now) for e in experiments.experiments])


@router.get(
    "/experiments/{experiment_id}/report",
    response_model=ExperimentReport,
    summary="Experiment report",
    description=(
        "Per variant: exposures, users, impressions, clicks, conversions, CTR and conversion "
        "rate (both per impression), each compared with the control by a two-sided "
        "two-proportion z-test (p-value, confidence interval of the absolute and relative "
        "lift); the impressions per variant needed for the configured minimum detectable "
        "effect; and a sample-ratio-mismatch check of exposures against the weights."
    ),
    responses={
        404: {"description": "No experiment with this id in the config."},
        503: {"description": "The exposure store is unavailable."},
    },
)
async def experiment_report(experiment_id: str, experiments: ExperimentsDep) -> ExperimentReport:
    try:
        report = await experiments.report(experiment_id)
    except ExposureStoreUnavailable as exc:
        raise HTTPException(status_code=503, detail=f"exposure store unavailable: {exc}") from exc
    if report is None:
        raise HTTPException(status_code=404, detail=f"unknown experiment {experiment_id!r}")
    return report


def _summary(experiment: Experiment, now: datetime) -> ExperimentOut:
    return ExperimentOut(
        id=experiment.id,
        running=is_running(experiment, now),
        traffic_share=experiment.traffic_share,
        control=experiment.control,
        variants=[
            VariantOut(name=v.name, weight=v.weight, strategy=v.strategy.model_dump())
            for v in experiment.variants
        ],
        segments=experiment.targeting.segments,
        devices=experiment.targeting.devices,
        start=experiment.start,
        stop=experiment.stop,
    )
