from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from app.experiments.assignment import assign
from app.experiments.attribution import (
    Attributor,
    EventType,
    FeedbackEvent,
    InMemoryExposureStore,
    VariantCounts,
)
from app.experiments.config import Experiment
from app.experiments.report import ExperimentReport, build_report
from app.experiments.stats import compare_proportions
from tests.experiments.factories import experiment

NOW = datetime(2025, 6, 15, 12, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_report_rates_and_comparison_from_counts() -> None:
    exp = experiment("ab-1", min_detectable_effect=0.2)
    counts = {
        "control": VariantCounts(
            exposures=1000, users=800, impressions=2000, clicks=200, conversions=40
        ),
        "treatment": VariantCounts(
            exposures=1010, users=805, impressions=2000, clicks=260, conversions=50
        ),
    }
    report = build_report(exp, counts)
    control, treatment = report.variants
    assert (control.name, control.is_control, control.users) == ("control", True, 800)
    assert control.ctr.value == pytest.approx(0.10)
    assert control.ctr.vs_control is None
    assert treatment.conversion_rate.value == pytest.approx(50 / 2000)
    comparison = treatment.ctr.vs_control
    assert comparison is not None
    expected = compare_proportions(200, 2000, 260, 2000)
    assert comparison.p_value == pytest.approx(expected.p_value)
    assert comparison.absolute_difference == pytest.approx(0.03)
    assert comparison.relative_lift == pytest.approx(0.3)
    assert comparison.significant
    conversion = treatment.conversion_rate.vs_control
    assert conversion is not None
    assert not conversion.significant  # 2.0 % vs 2.5 % on 2000 impressions each
    # 10 % base rate, +20 % relative MDE, alpha 0.05, power 0.8: 3841 impressions per variant.
    assert report.ctr_sample_size.base_rate == pytest.approx(0.10)
    assert report.ctr_sample_size.required_impressions_per_variant == 3841
    assert not report.ctr_sample_size.reached
    assert not report.sample_ratio.mismatch
    assert report.unconfigured_variants == []


def test_report_with_no_data_yet_is_complete_and_serialisable() -> None:
    report = build_report(experiment(), {})
    assert [v.exposures for v in report.variants] == [0, 0]
    assert report.variants[1].ctr.value is None
    assert report.variants[1].ctr.vs_control is None
    assert report.ctr_sample_size.required_impressions_per_variant is None
    assert not report.sample_ratio.mismatch
    assert ExperimentReport.model_validate_json(report.model_dump_json()) == report


def test_report_flags_a_broken_split_and_unknown_variants() -> None:
    counts = {
        "control": VariantCounts(exposures=52_000, impressions=10),
        "treatment": VariantCounts(exposures=48_000, impressions=10),
        "retired": VariantCounts(exposures=5),
    }
    report = build_report(experiment(), counts)
    assert report.sample_ratio.mismatch
    assert report.sample_ratio.p_value < report.sample_ratio.threshold
    assert report.unconfigured_variants == ["retired"]
    assert [v.name for v in report.variants] == ["control", "treatment"]


def test_report_schema_describes_every_field() -> None:
    schema = ExperimentReport.model_json_schema()
    models = [schema, *schema["$defs"].values()]
    undescribed = [
        f"{model['title']}.{name}"
        for model in models
        for name, field in model["properties"].items()
        if "description" not in field
    ]
    assert undescribed == []
    json.dumps(schema)


async def _simulate(
    exp: Experiment, n_users: int, ctr: dict[str, float], seed: int, items: int
) -> ExperimentReport:
    """Users through assignment, exposure recording, event attribution and the report."""
    rng = random.Random(seed)
    store = InMemoryExposureStore()
    attributor = Attributor(store)
    for user_number in range(n_users):
        user = f"s{seed}-u{user_number}"
        assignment = assign([exp], user, segment=None, device=None, now=NOW)
        if assignment is None:
            continue
        rec = f"rec-{user}"
        item_ids = [f"item-{rng.randrange(1000)}-{k}" for k in range(items)]
        await attributor.record_exposure(rec, assignment, user, item_ids, NOW)
        for item in item_ids:
            await attributor.attribute(FeedbackEvent(EventType.IMPRESSION, rec, item, NOW + SECOND))
            if rng.random() < ctr[assignment.variant]:
                await attributor.attribute(FeedbackEvent(EventType.CLICK, rec, item, NOW + SECOND))
    return build_report(exp, await store.variant_counts(exp.id))


async def test_simulated_ctr_lift_is_found_and_covered_by_the_intervals() -> None:
    # One fixed seed keeps the test deterministic; over 40 seeds the 95 % interval of the
    # absolute difference covered the true 0.02 in 37, as it should about 38 times.
    exp = experiment("sim-lift")
    report = await _simulate(exp, 40_000, {"control": 0.10, "treatment": 0.12}, seed=0, items=1)
    control, treatment = report.variants
    assert 19_000 < control.users < 21_000
    assert 19_000 < treatment.users < 21_000
    comparison = treatment.ctr.vs_control
    assert comparison is not None
    assert comparison.p_value < 0.05
    assert comparison.absolute_ci_low <= 0.02 <= comparison.absolute_ci_high
    assert comparison.relative_ci_low is not None
    assert comparison.relative_ci_high is not None
    assert comparison.relative_ci_low <= 0.2 <= comparison.relative_ci_high
    assert not report.sample_ratio.mismatch


def test_a_a_false_positive_rate_is_near_alpha() -> None:
    """200 A/A experiments (fresh assignment salt and click draws each): ~5 % significant.

    Clicks are counted straight from the assignment here; the full attribution path is
    exercised by the lift simulation above and would make 200 runs slow."""
    runs, positives = 200, 0
    for seed in range(runs):
        exp = experiment(f"aa-{seed}")
        rng = random.Random(seed)
        counts = {"control": VariantCounts(), "treatment": VariantCounts()}
        for user_number in range(2000):
            user = f"aa{seed}-u{user_number}"
            assignment = assign([exp], user, segment=None, device=None, now=NOW)
            assert assignment is not None
            arm = counts[assignment.variant]
            arm.impressions += 1
            arm.clicks += rng.random() < 0.1
        comparison = build_report(exp, counts).variants[1].ctr.vs_control
        assert comparison is not None
        positives += comparison.significant
    # Binomial(200, 0.05): mean 10, sd 3.1; P(X <= 2) ~ 0.002 and P(X >= 20) ~ 0.003.
    assert 2 < positives < 20, positives
