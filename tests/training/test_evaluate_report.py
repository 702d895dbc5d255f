"""The evaluation report: group gaps and the Markdown / JSON files."""

from __future__ import annotations

import dataclasses
import json

import pytest

from app.training.evaluate_report import EvaluationReport, MethodScores, ProtocolResult


def method(name: str, group_ndcg: dict[str, float]) -> MethodScores:
    return MethodScores(
        name=name,
        ndcg=0.2,
        recall=0.3,
        hit_rate=0.5,
        coverage=0.4,
        long_tail_share=0.1,
        group_ndcg={"age": group_ndcg},
        group_long_tail={"age": dict.fromkeys(group_ndcg, 0.1)},
        reference_ndcg=0.195 if name == "EASE" else None,
    )


RESULT = ProtocolResult(
    protocol="warm",
    test_users=61,
    train_interactions=500,
    group_sizes={"age": {"20s": 30, "30s": 30, "70s": 1}},
    served_sources={"personalized": 61},
    methods=[method("EASE", {"20s": 0.3, "30s": 0.1, "70s": 0.9})],
    seconds={"build": 1.0},
)


def test_max_gap_ignores_groups_below_the_size_floor():
    assert RESULT.max_gap(RESULT.methods[0], "age") == pytest.approx(0.2)
    assert RESULT.max_gap(RESULT.methods[0], "gender") == 0.0


def test_report_files_hold_the_table_and_the_numbers(tmp_path):
    markdown, payload = EvaluationReport("shop", [RESULT]).write(tmp_path / "eval")
    text = markdown.read_text()
    assert "| EASE | 0.2000 | 0.3000 | 0.5000 | 0.400 | 0.100 | 0.195 |" in text
    assert "| age=70s | 1 | 0.9000 (0.10) |" in text
    data = json.loads(payload.read_text())
    assert data["results"][0]["methods"][0]["max_gap"] == {"age": pytest.approx(0.2)}


def test_the_cold_draw_seed_is_reported_with_the_cold_protocol_only() -> None:
    cold = dataclasses.replace(RESULT, protocol="cold")
    assert "users drawn with seed 7" in EvaluationReport("shop", [cold], cold_seed=7).to_markdown()
    assert "seed" not in EvaluationReport("shop", [RESULT], cold_seed=7).to_markdown()
    assert json.loads(EvaluationReport("shop", [cold], cold_seed=7).to_json())["cold_seed"] == 7


def test_the_served_models_tuned_settings_are_reported() -> None:
    tuned = dataclasses.replace(
        RESULT, model_params={"demo_model": "lift", "demo_strength": 10.0, "w_pop": 0.123456}
    )
    text = EvaluationReport("shop", [tuned]).to_markdown()
    assert "Served model's settings: demo_model lift, demo_strength 10, w_pop 0.1235." in text
    nested = dataclasses.replace(RESULT, model_params={"retrieval": {"ann_candidates": 200}})
    nested_text = EvaluationReport("shop", [nested]).to_markdown()
    assert "settings: retrieval.ann_candidates 200." in nested_text
    assert json.loads(EvaluationReport("shop", [tuned]).to_json())["results"][0][
        "model_params"
    ] == {"demo_model": "lift", "demo_strength": 10.0, "w_pop": 0.123456}
    assert "settings" not in EvaluationReport("shop", [RESULT]).to_markdown()
