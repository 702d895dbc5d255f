"""``recserve evaluate`` on a tiny synthetic shop: a real build (Feast on SQLite, ONNX) and
every test user answered by the serving engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main
from app.data.synthetic import generate_shop
from app.training.evaluate import DEFAULT_COLD_DRAWS, NO_TIME_NOTE

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
    assert set(methods) == {
        "popularity",
        "segment popularity",
        "EASE",
        "item-kNN",
        "RP3beta",
        "served model",
    }
    served, popularity = methods["served model"], methods["popularity"]
    # Each baseline reports what its tuning on validation chose.
    assert set(methods["item-kNN"]["params"]) >= {"neighbours"}
    assert set(methods["RP3beta"]["params"]) >= {"alpha", "beta"}
    assert "l2" in methods["EASE"]["params"]
    assert warm["seed"] is None
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
    args = ["evaluate", "--data", str(shop), "--protocol", "cold", "--cold-draws", "1"]
    assert main(["--home", str(tmp_path / "home"), *args, "--out", str(out)]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    (cold,) = report["results"]
    methods = {m["name"]: m for m in cold["methods"]}
    # No attributes: no segments, no ridge; cold users can only be answered by popularity.
    assert set(methods) == {"popularity", "served model"}
    assert cold["served_sources"] == {"popular": cold["test_users"]}
    assert methods["served model"]["ndcg"] == pytest.approx(methods["popularity"]["ndcg"])
    assert cold["group_sizes"] == {}
    assert cold["seed"] == 0
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


def test_the_cold_protocol_runs_one_build_per_draw_and_summarises_them(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSERVE_HOME", str(tmp_path / "home"))
    shop = generate_shop(tmp_path / "src", n_users=200, n_items=80, n_events=5000, seed=3)
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(shop), "--protocol", "cold", "--cold-draws", "2"]
    assert main(["--home", str(tmp_path / "home"), *args, "--out", str(out)]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert [r["seed"] for r in report["results"]] == [0, 1]
    first, second = report["results"]
    assert first["protocol"] == second["protocol"] == "cold"
    # 10% of the users with interactions, per draw (the generator leaves a few without).
    assert 15 <= first["test_users"] == second["test_users"] <= 20
    names = [m["name"] for m in first["methods"]]
    assert names == ["popularity", "segment popularity", "demographic ridge", "served model"]
    summary = {s["name"]: s for s in report["cold_summary"]}
    served = [r["methods"][-1]["ndcg"] for r in report["results"]]
    assert summary["served model"]["ndcg"]["mean"] == pytest.approx(np.mean(served))
    for baseline in names[:-1]:
        own = [m["ndcg"] for r in report["results"] for m in r["methods"] if m["name"] == baseline]
        wins = sum(s > b for s, b in zip(served, own, strict=True))
        assert summary[baseline]["wins"] == wins
        assert summary[baseline]["draws"] == 2
    text = (out / "evaluation.md").read_text()
    assert f"## cold: 2 draws of {first['test_users']} users (seeds 0, 1)" in text


@pytest.mark.parametrize("draws", ["0", "-3", "two"])
def test_a_bad_number_of_cold_draws_is_refused_naming_the_option(tmp_path, capsys, draws):
    with pytest.raises(SystemExit) as exit_info:
        main(["--home", str(tmp_path), "evaluate", "--data", str(tmp_path), "--cold-draws", draws])
    assert exit_info.value.code == 2
    assert "argument --cold-draws" in capsys.readouterr().err


def test_the_help_names_the_default_draws_and_speaks_of_the_product_only(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # however argparse wrapped it
    assert f"(default {DEFAULT_COLD_DRAWS})" in help_text
    assert "seeds 0 .. N-1" in help_text
    for diary in ("#", "issue", "reference", "276"):
        assert diary not in help_text
