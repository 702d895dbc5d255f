"""The experiment report: per-variant rates, lift against control, power and split checks.

``build_report`` is pure: it takes the experiment's config and the attribution counters
(``ExposureStore.variant_counts``) and returns the model ``GET /experiments/{id}/report``
serves as-is. Both rates use impressions as the denominator (see ``attribution`` for why
each impression, click and conversion is a once-only ``(recommendation, item)`` pair):

* CTR = clicks / impressions
* conversion rate = conversions / impressions (add-to-cart or purchase per item shown)

The tests treat impressions as independent although users are the randomised unit; with many
impressions per user the p-values are optimistic (see ``stats``).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field

from app.experiments.attribution import VariantCounts
from app.experiments.config import Experiment, Variant
from app.experiments.stats import (
    SRM_THRESHOLD,
    compare_proportions,
    required_sample_size,
    sample_ratio_mismatch,
)


class Comparison(BaseModel):
    """This variant's rate against the control's: two-sided two-proportion z-test."""

    absolute_difference: float = Field(description="Variant rate minus control rate.")
    absolute_ci_low: float = Field(description="Lower CI bound of the difference (unpooled SE).")
    absolute_ci_high: float = Field(description="Upper CI bound of the difference (unpooled SE).")
    relative_lift: float | None = Field(
        description="Variant rate / control rate - 1; null when the control rate is 0."
    )
    relative_ci_low: float | None = Field(
        description="Lower CI bound of the relative lift (delta method); null when a rate is 0."
    )
    relative_ci_high: float | None = Field(
        description="Upper CI bound of the relative lift (delta method); null when a rate is 0."
    )
    z: float = Field(description="z statistic with the pooled standard error.")
    p_value: float = Field(description="Two-sided p-value of the pooled z-test.")
    significant: bool = Field(description="p_value < alpha.")


class Rate(BaseModel):
    value: float | None = Field(description="The rate; null when there are no impressions yet.")
    vs_control: Comparison | None = Field(
        description="Null for the control itself, or when either side has no impressions."
    )


class VariantReport(BaseModel):
    name: str = Field(description="Variant name from the config.")
    is_control: bool = Field(description="This is the variant the others are compared with.")
    weight: float = Field(description="Configured weight.")
    exposures: int = Field(description="Recommendation responses served under this variant.")
    users: int = Field(description="Distinct users who received at least one exposure.")
    impressions: int = Field(description="Distinct (recommendation, item) pairs seen.")
    clicks: int = Field(description="Distinct (recommendation, item) pairs clicked.")
    conversions: int = Field(
        description="Distinct (recommendation, item) pairs added to cart or purchased."
    )
    unattributed: dict[str, int] = Field(
        description="Feedback events naming one of this variant's recommendations that were not "
        "counted, by reason: before_exposure (stamped earlier than the served second less the "
        "allowed clock skew), after_window, item_not_shown."
    )
    ctr: Rate = Field(description="Clicks / impressions.")
    conversion_rate: Rate = Field(description="Conversions / impressions.")


class SampleSize(BaseModel):
    """Impressions each variant needs for the configured MDE, alpha and power."""

    base_rate: float | None = Field(description="Control's observed rate the estimate uses.")
    required_impressions_per_variant: int | None = Field(
        description="Null until the control's rate is strictly between 0 and 1."
    )
    reached: bool = Field(description="Every variant has at least the required impressions.")


class SampleRatioCheck(BaseModel):
    """Chi-square goodness of fit of exposures per variant to the configured weights.

    Exposures are responses, not users: heavy users make the counts overdispersed, so a flag
    on a small experiment deserves a look at the per-variant ``users`` too."""

    chi_square: float | None = Field(
        description="Null when a weight-0 variant received exposures (a mismatch outright)."
    )
    p_value: float = Field(description="Chi-square p-value (0 for a weight-0 variant hit).")
    threshold: float = Field(description="A mismatch is flagged when p_value < threshold.")
    mismatch: bool = Field(description="The split is broken: do not trust the comparisons.")


class ExperimentReport(BaseModel):
    experiment_id: str = Field(description="Id from the experiments config.")
    control: str = Field(description="Name of the control variant.")
    alpha: float = Field(description="Significance level of the tests and 1 - CI coverage.")
    power: float = Field(description="Power the sample sizes are computed for.")
    min_detectable_effect: float = Field(description="Relative lift the test is sized for.")
    variants: list[VariantReport] = Field(description="In config order.")
    ctr_sample_size: SampleSize = Field(description="Sample size for the CTR comparison.")
    conversion_sample_size: SampleSize = Field(
        description="Sample size for the conversion-rate comparison."
    )
    sample_ratio: SampleRatioCheck = Field(description="Sample-ratio-mismatch check.")
    unconfigured_variants: list[str] = Field(
        description="Variants with counts but no longer in the config; left out of the report."
    )


def build_report(experiment: Experiment, counts: Mapping[str, VariantCounts]) -> ExperimentReport:
    """The report of ``experiment`` from its per-variant counters (missing variants count 0)."""
    by_variant = {v.name: counts.get(v.name, VariantCounts()) for v in experiment.variants}
    control = by_variant[experiment.control]
    srm = sample_ratio_mismatch(
        [by_variant[v.name].exposures for v in experiment.variants],
        [v.weight for v in experiment.variants],
    )
    smallest = min(c.impressions for c in by_variant.values())
    return ExperimentReport(
        experiment_id=experiment.id,
        control=experiment.control,
        alpha=experiment.alpha,
        power=experiment.power,
        min_detectable_effect=experiment.min_detectable_effect,
        variants=[
            _variant_report(experiment, v, by_variant[v.name], control) for v in experiment.variants
        ],
        ctr_sample_size=_sample_size(experiment, control.clicks, control.impressions, smallest),
        conversion_sample_size=_sample_size(
            experiment, control.conversions, control.impressions, smallest
        ),
        sample_ratio=SampleRatioCheck(
            chi_square=srm.chi_square,
            p_value=srm.p_value,
            threshold=SRM_THRESHOLD,
            mismatch=srm.mismatch,
        ),
        unconfigured_variants=sorted(set(counts) - set(by_variant)),
    )


def _variant_report(
    experiment: Experiment, variant: Variant, counts: VariantCounts, control: VariantCounts
) -> VariantReport:
    is_control = variant.name == experiment.control
    return VariantReport(
        name=variant.name,
        is_control=is_control,
        weight=variant.weight,
        exposures=counts.exposures,
        users=counts.users,
        impressions=counts.impressions,
        clicks=counts.clicks,
        conversions=counts.conversions,
        unattributed=counts.unattributed,
        ctr=_rate(
            counts.clicks,
            counts.impressions,
            None if is_control else (control.clicks, control.impressions),
            experiment.alpha,
        ),
        conversion_rate=_rate(
            counts.conversions,
            counts.impressions,
            None if is_control else (control.conversions, control.impressions),
            experiment.alpha,
        ),
    )


def _rate(successes: int, impressions: int, control: tuple[int, int] | None, alpha: float) -> Rate:
    """The rate, compared with ``control`` = (successes, impressions) unless that is None."""
    value = successes / impressions if impressions else None
    if control is None or not impressions or not control[1]:
        return Rate(value=value, vs_control=None)
    result = compare_proportions(control[0], control[1], successes, impressions, alpha)
    relative_ci = result.relative_ci or (None, None)
    return Rate(
        value=value,
        vs_control=Comparison(
            absolute_difference=result.absolute_difference,
            absolute_ci_low=result.absolute_ci[0],
            absolute_ci_high=result.absolute_ci[1],
            relative_lift=result.relative_lift,
            relative_ci_low=relative_ci[0],
            relative_ci_high=relative_ci[1],
            z=result.z,
            p_value=result.p_value,
            significant=result.p_value < alpha,
        ),
    )


def _sample_size(
    experiment: Experiment, control_successes: int, control_impressions: int, smallest: int
) -> SampleSize:
    base_rate = control_successes / control_impressions if control_impressions else None
    required = (
        None
        if base_rate is None
        else required_sample_size(
            base_rate, experiment.min_detectable_effect, experiment.alpha, experiment.power
        )
    )
    return SampleSize(
        base_rate=base_rate,
        required_impressions_per_variant=required,
        reached=required is not None and smallest >= required,
    )
