"""The parity check on a tiny synthetic shop: a real build, the evaluation's engine answers and
a real ``recserve serve`` (uvicorn) asked over HTTP for every test user."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.data.synthetic import generate_shop
from loadtests.served_parity import format_report, main, run

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("protocol", ["warm", "cold"])
def test_every_test_user_gets_over_http_the_list_the_evaluation_scored(
    tmp_path: Path, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = generate_shop(tmp_path, n_users=120, n_items=80, n_events=3000, seed=7)
    # The evaluation builds on SQLite whatever is configured; the server it starts must too,
    # or it would read an empty Redis store and answer everyone from popularity.
    monkeypatch.setenv("RECSERVE_REDIS_URL", "redis://127.0.0.1:6379/15")

    report = run(source, protocol, cold_seed=3, tuning_budget_seconds=2)

    assert report["users"] > 0
    assert report["identical"] == report["users"]
    assert report["mismatches"] == []
    assert report["ndcg_http"] == pytest.approx(report["ndcg_evaluation"])
    assert f"{report['users']} of {report['users']} test users" in format_report(report)


def test_a_file_instead_of_a_dataset_is_refused(tmp_path: Path, capsys) -> None:
    data = tmp_path / "ratings.csv"
    data.write_text("user_id,item_id\nu,i\n")
    assert main(["--data", str(data)]) == 2
    assert "RecBole atomic dataset directory" in capsys.readouterr().err
