"""``recserve evaluate`` on a tiny synthetic shop: a real build (Feast on SQLite, ONNX) and
every test user answered by the serving engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main
from app.data.synthetic import generate_shop
from app.training.evaluate import NO_TIME_NOTE
from app.training.evaluate_protocol import DEFAULT_COLD_SEED

pytestmark = pytest.mark.integration


def test_served_model_beats_popularity_on_warm(tmp_path, monkeypatch, capsys):
    # main() exports RECSERVE_HOME; monkeypatch restores it after the test.
    monkeypatch.setenv("RECSERVE_HOME", str(tmp_path / "home"))
    shop = generate_shop(tmp_path / "src", n_users=300, n_items=120, n_events=8000, seed=1)
    out = tmp_path / "out"
    home = str(tmp_path / "home")
    args = ["evaluate", "--data", str(shop), "--protocol", "warm", "--out", str(out)]
    code = main(["--home", home, *args])
    assert code == 0
    report = json.loads((out / "evaluation.json").read_text())
    (warm,) = report["results"]
    assert warm["protocol"] == "warm"
    methods = {m["name"]: m for m in warm["methods"]}
    assert set(methods) == {"popularity", "segment popularity", "EASE λ=250", "served model"}
    served, popularity = methods["served model"], methods["popularity"]
    assert served["ndcg"] > popularity["ndcg"]
    assert sum(warm["served_sources"].values()) == warm["test_users"] > 0
    assert warm["served_sources"].get("popular", 0) == 0  # every user reached the model
    assert 0.0 < served["coverage"] <= 1.0
    assert set(served["group_ndcg"]["gender"]) == set(warm["group_sizes"]["gender"])
    assert "| served model |" in (out / "evaluation.md").read_text()
    assert "| served model |" in capsys.readouterr().out
    # What the build's tuning chose is reported beside the figures it led to.
    assert warm["model_params"]["demo_model"] in {"ridge", "lift"}
    assert warm["model_params"]["ease_l2"] > 0
    # The evaluation never touches the configured home's model directory.
    assert not (tmp_path / "home" / "models").exists()


def test_a_dataset_of_interactions_alone_gets_no_demographic_baselines(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSERVE_HOME", str(tmp_path / "home"))
    shop = generate_shop(tmp_path / "src", n_users=300, n_items=120, n_events=8000, seed=2)
    for suffix in ("user", "item"):
        (shop / f"{shop.name}.{suffix}").unlink()
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(shop), "--protocol", "cold", "--out", str(out)]
    assert main(["--home", str(tmp_path / "home"), *args]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    (cold,) = report["results"]
    methods = {m["name"]: m for m in cold["methods"]}
    # No attributes: no segments, no ridge; cold users can only be answered by popularity.
    assert set(methods) == {"popularity", "served model"}
    assert cold["served_sources"] == {"popular": cold["test_users"]}
    assert methods["served model"]["ndcg"] == pytest.approx(methods["popularity"]["ndcg"])
    assert cold["group_sizes"] == {}
    assert report["cold_seed"] == DEFAULT_COLD_SEED  # no --cold-seed: the documented default
    assert any("no user file" in note for note in report["notes"])


def test_interactions_without_time_are_flagged_in_the_report(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSERVE_HOME", str(tmp_path / "home"))
    shop = tmp_path / "src" / "notime"
    shop.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = [f"u{u}\tsku-{i:03d}" for u in range(60) for i in rng.choice(80, 8, replace=False)]
    (shop / "notime.inter").write_text("user_id:token\titem_id:token\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(shop), "--protocol", "warm", "--out", str(out)]
    assert main(["--home", str(tmp_path / "home"), *args]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert NO_TIME_NOTE in report["notes"]
    assert any("no timestamp column" in note for note in report["notes"])
    assert f"- {NO_TIME_NOTE}" in (out / "evaluation.md").read_text()


def test_a_file_instead_of_a_dataset_directory_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECSERVE_HOME", str(tmp_path / "home"))
    data = tmp_path / "ratings.csv"
    data.write_text("user_id,item_id\nu,i\n")
    assert main(["--home", str(tmp_path / "home"), "evaluate", "--data", str(data)]) == 2
    assert "RecBole atomic dataset directory" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["-3", "two"])
def test_a_bad_cold_seed_is_refused_naming_the_option(tmp_path, capsys, seed):
    with pytest.raises(SystemExit) as exit_info:
        main(["--home", str(tmp_path), "evaluate", "--data", str(tmp_path), "--cold-seed", seed])
    assert exit_info.value.code == 2
    assert "argument --cold-seed" in capsys.readouterr().err


def test_the_cold_seed_help_names_the_default_the_evaluation_uses(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # however argparse wrapped it
    assert f"default {DEFAULT_COLD_SEED}" in help_text
