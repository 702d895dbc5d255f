from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.experiments.config import (
    CandidateMixStrategy,
    DiversifiedStrategy,
    ExperimentConfigError,
    ModelStrategy,
    load_experiments,
    parse_experiments,
)
from tests.experiments.factories import raw_experiment

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "experiments.toml"


def _variant(name: str, weight: float, strategy: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "weight": weight, "strategy": strategy or {"kind": "popular"}}


def test_example_file_loads_with_every_strategy_kind() -> None:
    experiments = load_experiments(EXAMPLE)
    assert [e.id for e in experiments] == ["ranker-diversity", "cold-start-mix"]
    first, second = experiments
    assert first.start == datetime(2025, 6, 1, tzinfo=UTC)
    assert first.targeting.devices == ["ios", "android"]
    assert first.alpha == 0.05
    assert first.power == 0.8
    diversified = first.variant("diversified").strategy
    assert isinstance(diversified, DiversifiedStrategy)
    assert diversified.lambda_ == 0.7
    published = second.variant("model").strategy
    assert isinstance(published, ModelStrategy)
    assert published.model_version is None  # the example runs on any home: nothing pinned
    mix = second.variant("mix").strategy
    assert isinstance(mix, CandidateMixStrategy)
    assert mix.source_weights == {"model": 0.7, "popular": 0.3}


def test_defaults_for_alpha_power_targeting_and_window() -> None:
    (experiment,) = parse_experiments({"experiments": [raw_experiment()]})
    assert (experiment.alpha, experiment.power) == (0.05, 0.8)
    assert experiment.targeting.segments is None
    assert experiment.start is None
    assert experiment.stop is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"variants": [_variant("control", 0), _variant("treatment", 0)]},
            "experiments[ab-1].variants: weights must sum to > 0",
            id="weights-sum-zero",
        ),
        pytest.param(
            {"variants": [_variant("control", 1), _variant("treatment", -1)]},
            "experiments[ab-1].variants[treatment].weight: Input should be greater than or equal",
            id="negative-weight",
        ),
        pytest.param(
            {"variants": [_variant("control", 1), _variant("control", 1)]},
            "experiments[ab-1].variants: variant names must be unique (repeated: control)",
            id="duplicate-variant",
        ),
        pytest.param(
            {"variants": [_variant("control", 1)]},
            "experiments[ab-1].variants: List should have at least 2 items",
            id="single-variant",
        ),
        pytest.param(
            {"control": "baseline"},
            "experiments[ab-1].control: control 'baseline' is not one of the variants",
            id="control-missing",
        ),
        pytest.param(
            {"variants": [_variant("control", 0), _variant("treatment", 1)]},
            "experiments[ab-1].control: control 'control' has weight 0",
            id="control-weight-zero",
        ),
        pytest.param(
            {"traffic_share": 1.5},
            "experiments[ab-1].traffic_share: Input should be less than or equal to 1",
            id="traffic-above-one",
        ),
        pytest.param(
            {"traffic_share": -0.1},
            "experiments[ab-1].traffic_share: Input should be greater than or equal to 0",
            id="traffic-negative",
        ),
        pytest.param(
            {"min_detectable_effect": 0},
            "experiments[ab-1].min_detectable_effect: Input should be greater than 0",
            id="mde-zero",
        ),
        pytest.param(
            {"alpha": 1.0}, "experiments[ab-1].alpha: Input should be less than 1", id="alpha"
        ),
        pytest.param(
            {"power": 0}, "experiments[ab-1].power: Input should be greater than 0", id="power"
        ),
        pytest.param(
            {"start": datetime(2025, 2, 1, tzinfo=UTC), "stop": datetime(2025, 1, 1, tzinfo=UTC)},
            "experiments[ab-1].stop: stop 2025-01-01T00:00:00+00:00 must be after start",
            id="stop-before-start",
        ),
        pytest.param(
            {"start": datetime(2025, 1, 1)},
            "experiments[ab-1].start: Input should have timezone info",
            id="naive-datetime",
        ),
        pytest.param(
            {"targeting": {"segments": []}},
            "experiments[ab-1].targeting.segments: List should have at least 1 item",
            id="empty-segments",
        ),
        pytest.param(
            {"targeting": {"device": ["ios"]}},
            "experiments[ab-1].targeting.device: Extra inputs are not permitted",
            id="typo-key",
        ),
        pytest.param(
            {"variants": [_variant("control", 1), _variant("t", 1, {"kind": "bandit"})]},
            "experiments[ab-1].variants[t].strategy: Input tag 'bandit' found using 'kind'",
            id="unknown-strategy",
        ),
        pytest.param(
            {
                "variants": [
                    _variant("control", 1),
                    _variant("t", 1, {"kind": "diversified", "lambda": 1.2}),
                ]
            },
            "experiments[ab-1].variants[t].strategy.diversified.lambda: Input should be less",
            id="lambda-range",
        ),
        pytest.param(
            {
                "variants": [
                    _variant("control", 1),
                    _variant("t", 1, {"kind": "candidate_mix", "source_weights": {"a": 0}}),
                ]
            },
            "experiments[ab-1].variants[t].strategy.candidate_mix.source_weights: "
            "weights must sum to > 0",
            id="mix-weights-zero",
        ),
        pytest.param(
            {"id": "a b"},
            "experiments[a b].id: String should match pattern",
            id="id-charset",
        ),
    ],
)
def test_each_rule_names_experiment_and_field(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(ExperimentConfigError) as raised:
        parse_experiments({"experiments": [raw_experiment(**overrides)]}, source="exp.toml")
    message = str(raised.value)
    assert message.startswith("exp.toml:")
    assert expected in message


def test_duplicate_experiment_ids_are_rejected() -> None:
    with pytest.raises(
        ExperimentConfigError, match=r"experiment ids must be unique \(repeated: x\)"
    ):
        parse_experiments({"experiments": [raw_experiment("x"), raw_experiment("x")]})


def test_every_problem_is_reported_at_once() -> None:
    raw = {
        "experiments": [
            raw_experiment("a", traffic_share=2),
            raw_experiment("b", control="nobody"),
        ]
    }
    with pytest.raises(ExperimentConfigError) as raised:
        parse_experiments(raw)
    message = str(raised.value)
    assert "experiments[a].traffic_share" in message
    assert "experiments[b].control" in message


def test_experiment_without_id_is_named_by_position() -> None:
    raw = raw_experiment()
    del raw["id"]
    with pytest.raises(ExperimentConfigError, match=r"experiments\[#0\]\.id: Field required"):
        parse_experiments({"experiments": [raw]})


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "experiments.toml"
    path.write_text('[[experiments]]\nid = "a"\ntraffic_share = \n')
    with pytest.raises(ExperimentConfigError, match=r"experiments\.toml: .*line 3"):
        load_experiments(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ExperimentConfigError, match=r"nope\.toml"):
        load_experiments(tmp_path / "nope.toml")


def test_strategy_round_trips_under_its_toml_name() -> None:
    (experiment,) = parse_experiments({"experiments": [raw_experiment()]})
    dumped = experiment.model_dump()
    assert dumped["variants"][1]["strategy"] == {"kind": "diversified", "lambda": 0.5}
    assert parse_experiments({"experiments": [dumped]}) == (experiment,)
