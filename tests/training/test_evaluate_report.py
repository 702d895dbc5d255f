"""The evaluation report: group gaps, the cold draws' summary and the Markdown / JSON files."""

from __future__ import annotations

import dataclasses
import json
import statistics

import pytest

from app.training.evaluate_report import (
    SERVED,
    EvaluationReport,
    MethodScores,
    ProtocolResult,
)


def method(name: str, ndcg: float = 0.2, params: dict | None = None) -> MethodScores:
    groups = {"20s": 0.3, "30s": 0.1, "70s": 0.9}
    return MethodScores(
        name=name,
        ndcg=ndcg,
        recall=0.3,
        hit_rate=0.5,
        coverage=0.4,
        long_tail_share=0.1,
        group_ndcg={"age": groups},
        group_long_tail={"age": dict.fromkeys(groups, 0.1)},
        params=params or {},
    )


RESULT = ProtocolResult(
    protocol="warm",
    test_users=61,
    train_interactions=500,
    group_sizes={"age": {"20s": 30, "30s": 30, "70s": 1}},
    served_sources={"personalized": 61},
    methods=[method("EASE", params={"l2": 300.0, "max_items": 10000})],
    seconds={"build": 1.0},
)


def cold_draw(seed: int, served: float, ridge: float, ridge_l2: float) -> ProtocolResult:
    return dataclasses.replace(
        RESULT,
        protocol="cold",
        seed=seed,
        test_users=94,
        methods=[method("demographic ridge", ridge, {"l2": ridge_l2}), method(SERVED, served)],
    )


DRAWS = [
    cold_draw(0, 0.56, 0.54, 30.0),
    cold_draw(1, 0.60, 0.61, 30.0),
    cold_draw(2, 0.58, 0.55, 100.0),
]


def test_max_gap_ignores_groups_below_the_size_floor():
    assert RESULT.max_gap(RESULT.methods[0], "age") == pytest.approx(0.2)
    assert RESULT.max_gap(RESULT.methods[0], "gender") == 0.0


def test_report_files_hold_the_table_with_the_chosen_hyperparameters(tmp_path):
    markdown, payload = EvaluationReport("shop", [RESULT]).write(tmp_path / "eval")
    text = markdown.read_text()
    assert "| EASE | 0.2000 | 0.3000 | 0.5000 | 0.400 | 0.100 | l2=300 |" in text
    assert "| age=70s | 1 | 0.9000 (0.10) |" in text
    data = json.loads(payload.read_text())
    assert data["results"][0]["methods"][0]["max_gap"] == {"age": pytest.approx(0.2)}
    assert data["results"][0]["methods"][0]["params"] == {"l2": 300.0, "max_items": 10000}


def test_cold_draws_are_summarised_as_mean_and_sd_with_paired_wins():
    summary = {s.name: s for s in EvaluationReport("shop", [RESULT, *DRAWS]).cold_summary()}
    served, ridge = summary[SERVED], summary["demographic ridge"]
    assert served.ndcg.mean == pytest.approx(0.58)
    assert served.ndcg.sd == pytest.approx(statistics.stdev([0.56, 0.60, 0.58]))
    assert served.wins is None
    # Paired: the served model wins draws 0 and 2, loses draw 1.
    assert ridge.wins == 2
    assert ridge.draws == 3
    assert ridge.difference is not None
    assert ridge.difference.mean == pytest.approx(statistics.fmean([0.02, -0.01, 0.03]))


def test_the_cold_section_lists_the_distribution_every_draw_and_the_choices():
    text = EvaluationReport("shop", [RESULT, *DRAWS]).to_markdown()
    assert "## cold: 3 draws of 94 users (seeds 0, 1, 2)" in text
    assert "| demographic ridge | 0.5667 ± 0.0379 |" in text
    assert "| 2/3 | +0.0133 ± 0.0208 | l2=30 (2); l2=100 (1) |" in text
    assert "| 1 | 94 | 0.6100 | 0.6000 | 1 |" in text
    json_summary = json.loads(EvaluationReport("shop", DRAWS).to_json())["cold_summary"]
    assert [s["name"] for s in json_summary] == ["demographic ridge", SERVED]
    assert "cold" not in EvaluationReport("shop", [RESULT]).to_markdown()


def test_the_served_models_tuned_settings_are_reported() -> None:
    tuned = dataclasses.replace(
        RESULT, model_params={"demo_model": "lift", "demo_strength": 10.0, "w_pop": 0.123456}
    )
    text = EvaluationReport("shop", [tuned]).to_markdown()
    assert "Served model's settings: demo_model lift, demo_strength 10, w_pop 0.1235." in text
    nested = dataclasses.replace(RESULT, model_params={"retrieval": {"ann_candidates": 200}})
    nested_text = EvaluationReport("shop", [nested]).to_markdown()
    assert "settings: retrieval.ann_candidates 200." in nested_text
    assert "settings" not in EvaluationReport("shop", [RESULT]).to_markdown()


def test_a_tuning_stopped_by_its_budget_is_flagged() -> None:
    starved = dataclasses.replace(RESULT, tuning_budget_exhausted=True)
    assert (
        "Warning: the build's tuning ran out" in EvaluationReport("shop", [starved]).to_markdown()
    )
    assert "Warning" not in EvaluationReport("shop", [RESULT]).to_markdown()
    draws = [dataclasses.replace(DRAWS[0], tuning_budget_exhausted=True), *DRAWS[1:]]
    assert "Warning, draws 0: the build's tuning" in EvaluationReport("shop", draws).to_markdown()
