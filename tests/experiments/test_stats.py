from __future__ import annotations

import math

import pytest
from scipy.stats import chi2_contingency

from app.experiments.stats import compare_proportions, required_sample_size, sample_ratio_mismatch

Z_975 = 1.959963984540054  # standard normal 97.5 % quantile (tables)
Z_80 = 0.8416212335729143  # standard normal 80 % quantile (tables)


def _normal_two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def test_z_test_matches_the_textbook_formula() -> None:
    result = compare_proportions(200, 2000, 260, 2000)
    pooled = 460 / 4000
    z = 0.03 / math.sqrt(pooled * (1 - pooled) * (2 / 2000))
    assert result.z == pytest.approx(z, rel=1e-12)
    assert result.z == pytest.approx(2.97372, abs=1e-5)
    assert result.p_value == pytest.approx(_normal_two_sided_p(z), rel=1e-9)
    assert result.p_value == pytest.approx(0.0029421, abs=1e-7)
    unpooled_se = math.sqrt(0.1 * 0.9 / 2000 + 0.13 * 0.87 / 2000)
    assert result.absolute_difference == pytest.approx(0.03)
    assert result.absolute_ci[0] == pytest.approx(0.03 - Z_975 * unpooled_se, rel=1e-9)
    assert result.absolute_ci[1] == pytest.approx(0.03 + Z_975 * unpooled_se, rel=1e-9)


def test_z_squared_equals_the_uncorrected_chi_square_of_the_2x2_table() -> None:
    result = compare_proportions(130, 1000, 95, 900)
    chi2, p_value, _, _ = chi2_contingency([[130, 870], [95, 805]], correction=False)
    assert result.z**2 == pytest.approx(chi2, rel=1e-9)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert result.z < 0  # treatment is lower


def test_relative_lift_interval_uses_the_delta_method() -> None:
    result = compare_proportions(100, 1000, 150, 1000, alpha=0.05)
    ratio = 0.15 / 0.10
    se = ratio * math.sqrt((0.15 * 0.85 / 1000) / 0.15**2 + (0.1 * 0.9 / 1000) / 0.1**2)
    assert result.relative_lift == pytest.approx(0.5)
    assert result.relative_ci is not None
    assert result.relative_ci[0] == pytest.approx(0.5 - Z_975 * se, rel=1e-9)
    assert result.relative_ci[1] == pytest.approx(0.5 + Z_975 * se, rel=1e-9)


def test_wider_confidence_for_smaller_alpha() -> None:
    loose = compare_proportions(100, 1000, 150, 1000, alpha=0.1)
    strict = compare_proportions(100, 1000, 150, 1000, alpha=0.01)
    assert (
        strict.absolute_ci[0] < loose.absolute_ci[0] < loose.absolute_ci[1] < strict.absolute_ci[1]
    )


def test_degenerate_rates_give_no_evidence_and_no_relative_lift() -> None:
    result = compare_proportions(0, 500, 0, 400)
    assert (result.z, result.p_value) == (0.0, 1.0)
    assert result.relative_lift is None
    assert result.relative_ci is None
    only_treatment = compare_proportions(0, 500, 5, 400)
    assert only_treatment.relative_lift is None
    assert only_treatment.p_value < 0.05


@pytest.mark.parametrize(("successes", "trials"), [(1, 0), (-1, 10), (11, 10)])
def test_impossible_counts_are_rejected(successes: int, trials: int) -> None:
    with pytest.raises(ValueError, match="treatment"):
        compare_proportions(1, 10, successes, trials)


def test_sample_size_matches_the_standard_formula() -> None:
    # Fleiss (no continuity correction), p1 = 10 %, p2 = 12 %, alpha 0.05, power 0.8: 3841.
    assert required_sample_size(0.10, 0.20, alpha=0.05, power=0.8) == 3841
    p1, p2 = 0.04, 0.04 * 1.05
    mean = (p1 + p2) / 2
    expected = (
        Z_975 * math.sqrt(2 * mean * (1 - mean)) + Z_80 * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    ) ** 2 / (p2 - p1) ** 2
    assert required_sample_size(0.04, 0.05, alpha=0.05, power=0.8) == math.ceil(expected)


def test_sample_size_grows_with_stricter_alpha_and_higher_power() -> None:
    base = required_sample_size(0.1, 0.1, alpha=0.05, power=0.8)
    assert base is not None
    stricter = required_sample_size(0.1, 0.1, alpha=0.01, power=0.8)
    stronger = required_sample_size(0.1, 0.1, alpha=0.05, power=0.95)
    assert stricter is not None
    assert stronger is not None
    assert stricter > base
    assert stronger > base


@pytest.mark.parametrize(("base_rate", "mde"), [(0.0, 0.1), (1.0, 0.1), (0.95, 0.1)])
def test_sample_size_is_undefined_outside_the_unit_interval(base_rate: float, mde: float) -> None:
    assert required_sample_size(base_rate, mde, alpha=0.05, power=0.8) is None


def test_srm_flags_52_48_on_100k() -> None:
    result = sample_ratio_mismatch([52_000, 48_000], [1, 1])
    assert result.chi_square == pytest.approx(2 * 2000**2 / 50_000)  # 160
    assert result.mismatch


def test_srm_accepts_50_2_49_8_on_10k() -> None:
    result = sample_ratio_mismatch([5020, 4980], [1, 1])
    assert result.chi_square == pytest.approx(0.16)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(0.16 / 2)), rel=1e-9)
    assert not result.mismatch


def test_srm_uses_the_configured_weights() -> None:
    assert not sample_ratio_mismatch([2000, 1000, 1000], [2, 1, 1]).mismatch
    assert sample_ratio_mismatch([2000, 2000, 2000], [2, 1, 1]).mismatch


def test_srm_flags_exposures_of_a_zero_weight_variant() -> None:
    result = sample_ratio_mismatch([1000, 1000, 3], [1, 1, 0])
    assert result.mismatch
    assert result.chi_square is None
    assert not sample_ratio_mismatch([1000, 1000, 0], [1, 1, 0]).mismatch


def test_srm_without_data_is_not_a_mismatch() -> None:
    assert sample_ratio_mismatch([0, 0], [1, 1]).p_value == 1.0
