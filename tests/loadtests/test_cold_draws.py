"""The cold-draw scan: each seed's row is the evaluation's own baseline figures for that draw."""

from __future__ import annotations

from pathlib import Path

from loadtests.cold_draws import BASELINES, main, matches_table, scan, summary_table


def test_a_seed_row_depends_on_its_draw_and_only_on_it(shop_source: Path) -> None:
    first, again = scan(shop_source, [0, 0]), scan(shop_source, [1])
    assert first[0] == first[1]  # the same seed draws the same users
    assert first[0].ndcg != again[0].ndcg  # another seed, other users, other figures
    for draw in (*first, *again):
        assert draw.test_users > 0
        assert set(draw.ndcg) == set(BASELINES)
        assert all(0.0 <= v <= 1.0 for v in draw.ndcg.values())


def test_tables_list_only_draws_within_the_tolerance(shop_source: Path) -> None:
    draws = scan(shop_source, [0, 1, 2])
    assert "mean ± sd over 3 draws" in summary_table(draws)
    closest = min(d.max_abs_deviation for d in draws)
    assert matches_table(draws, closest - 1e-9).startswith("0 of 3 seeds")
    assert matches_table(draws, closest).startswith("1 of 3 seeds")


def test_a_missing_dataset_is_an_error_not_a_traceback(tmp_path: Path, capsys) -> None:
    assert main(["--data", str(tmp_path / "absent"), "--seeds", "2"]) == 2
    assert "no such file or directory" in capsys.readouterr().err
