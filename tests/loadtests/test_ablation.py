"""The ablation on a tiny synthetic shop: the tuned model and each part switched off."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.data.synthetic import generate_shop
from app.training.hybrid import HybridParams
from loadtests.ablation import FULL, ablate, format_table, main, parts


def test_parts_are_the_weights_tuning_left_above_zero() -> None:
    params = HybridParams(w_ease=1.0, w_trans=0.0, w_seq=0.3, w_demo=0.0, w_pop=0.1)
    assert parts(params) == ["w_ease", "w_seq", "w_pop"]
    assert "content_beta" in parts(HybridParams(content_beta=0.5))


def test_every_part_is_switched_off_once_on_every_draw(tmp_path: Path) -> None:
    source = generate_shop(tmp_path, n_users=150, n_items=80, n_events=4000, seed=5)
    report = ablate(source, "cold", cold_draws=2, budget=3.0)
    names = [v["name"] for v in report["variants"]]
    assert names[0] == FULL
    assert len(report["tuned_params"]) == 2
    expected = {
        f"without {p}" for tuned in report["tuned_params"] for p in parts(HybridParams(**tuned))
    }
    assert set(names[1:]) == expected
    for variant in report["variants"]:
        assert all(0.0 <= value <= 1.0 for value in variant["ndcg"])
    full = report["variants"][0]["ndcg"]
    assert len(full) == 2
    table = format_table(report)
    assert "(mean ± sd over 2 draws)" in table
    assert f"| {FULL} |" in table


def test_a_missing_dataset_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data", str(tmp_path / "absent")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
