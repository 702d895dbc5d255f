"""``recserve evaluate --protocol repeat``: the repeat-inclusive split, and a real build
answered by the serving engine in repeat mode beside personal and global popularity."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from app.cli import main
from app.data.synthetic import generate_shop
from app.training.evaluate_repeat import repeat_split


def test_the_truth_counts_test_items_bought_before() -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["u"] * 5,
            "item_id": ["a", "b", "a", "c", "a"],
            "timestamp": [1, 2, 3, 4, 5],
            "event_type": ["purchase"] * 5,
            "value": [1.0] * 5,
        }
    )
    split = repeat_split(frame)
    assert list(split.train["timestamp"]) == [1, 2, 3, 4]
    assert split.relevant == {"u": frozenset({"a"})}  # a rebuy: the warm split drops it


@pytest.mark.integration
def test_repeat_mode_is_evaluated_through_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECSERVE_HOME", str(tmp_path / "home"))
    shop = generate_shop(tmp_path / "src", n_users=300, n_items=120, n_events=8000, seed=1)
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(shop), "--protocol", "repeat", "--out", str(out)]
    assert main(["--home", str(tmp_path / "home"), *args]) == 0
    (result,) = json.loads((out / "evaluation.json").read_text())["results"]
    assert result["protocol"] == "repeat"
    methods = {m["name"]: m for m in result["methods"]}
    assert set(methods) == {"personal popularity", "popularity", "served model"}
    served = methods["served model"]
    assert served["ndcg"] > methods["popularity"]["ndcg"]
    assert served["ndcg"] >= methods["personal popularity"]["ndcg"] - 0.02
    # Every user reached the model (users whose interactions all fell in test are cold).
    assert set(result["served_sources"]) <= {"personalized", "cold_start"}
    assert sum(result["served_sources"].values()) == result["test_users"]
    assert result["model_params"]["repeat"]["exploration_weight"] is not None
    printed = capsys.readouterr().out
    assert "| personal popularity |" in printed
    assert "repeat scorers on the build's validation split" in printed
    assert "tuned frequency score 0." in printed
    assert not (tmp_path / "home" / "models").exists()
