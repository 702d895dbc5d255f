"""A build that must not be published changes nothing: same files, data version, model and
answers; it says what failed and what to do, without a traceback, and exits non-zero."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.data.versions import read_history
from app.settings import Settings
from tests.batch.conftest import copy_source, home_state, run_cli


def _rewrite(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def _all_invalid(lines: list[str]) -> list[str]:
    width = len(lines[0].split("\t"))
    return [lines[0]] + ["\t".join([""] * width) for _ in lines[1:]]


def _keep_forty_percent(lines: list[str]) -> list[str]:
    body = lines[1:]
    return [lines[0], *body[: int(len(body) * 0.4)]]


def _rename_value_column(lines: list[str]) -> list[str]:
    return [lines[0].replace("value:float", "amount:float"), *lines[1:]]


CASES = {
    "all rows invalid": (_all_invalid, "no interactions accepted"),
    "60% fewer rows": (_keep_forty_percent, "interactions dropped by 60.0%"),
    "renamed column": (_rename_value_column, "input schema changed"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_build_leaves_the_home_serving_as_before(
    versioned_home: Settings, shop_source: Path, tmp_path: Path, case: str
) -> None:
    edit, expected = CASES[case]
    source = copy_source(shop_source, tmp_path / "shop")
    _rewrite(source / "shop.inter", edit)
    before = home_state(versioned_home)
    runs_before = len(read_history(versioned_home.versions_dir))

    result = run_cli(versioned_home.home, "build", "--data", str(source))

    assert result.returncode == 2, result.stderr
    assert "build refused" in result.stderr
    assert expected in result.stderr
    assert "Nothing was published" in result.stderr
    assert "Traceback" not in result.stderr
    assert home_state(versioned_home) == before
    history = read_history(versioned_home.versions_dir)
    assert len(history) == runs_before + 1
    assert history[-1].outcome == "refused"
    assert history[-1].data_version is None


def test_all_invalid_rows_are_kept_where_the_message_says(
    versioned_home: Settings, shop_source: Path, tmp_path: Path
) -> None:
    source = copy_source(shop_source, tmp_path / "shop")
    _rewrite(source / "shop.inter", _all_invalid)

    result = run_cli(versioned_home.home, "build", "--data", str(source))

    refused = read_history(versioned_home.versions_dir)[-1]
    assert refused.quarantine_dir is not None
    quarantine = Path(refused.quarantine_dir) / "quarantine" / "interactions.csv"
    assert str(quarantine.parent) in result.stderr
    rows_read = len(source.joinpath("shop.inter").read_text().splitlines()) - 1
    assert len(quarantine.read_text().splitlines()) == rows_read + 1  # header + every row


def test_missing_required_column_is_refused_without_change(
    versioned_home: Settings, shop_source: Path, tmp_path: Path
) -> None:
    source = copy_source(shop_source, tmp_path / "shop")
    _rewrite(
        source / "shop.inter",
        lambda lines: [lines[0].replace("user_id:token", "customer:token"), *lines[1:]],
    )
    before = home_state(versioned_home)

    result = run_cli(versioned_home.home, "build", "--data", str(source))

    assert result.returncode == 2
    assert "user_id" in result.stderr
    assert "Traceback" not in result.stderr
    assert home_state(versioned_home) == before


def test_a_schema_drift_warning_setting_lets_the_build_through(
    versioned_home: Settings, shop_source: Path, tmp_path: Path
) -> None:
    from app.batch.gates import check_ingest
    from app.data.ingest import ingest
    from app.data.versions import current_record
    from app.settings import BuildGateSettings

    source = copy_source(shop_source, tmp_path / "shop")
    _rewrite(source / "shop.inter", _rename_value_column)
    report = ingest(source, tmp_path / "data")
    previous = current_record(versioned_home.versions_dir)

    warnings = check_ingest(report, previous, BuildGateSettings(schema_drift="warn"), "")

    assert warnings == [
        "input schema changed: interactions: column(s) value missing",
        "input schema changed: interactions: new column(s) amount",
    ]


def test_only_the_last_refused_runs_keep_their_rejects(
    versioned_home: Settings, shop_source: Path, tmp_path: Path
) -> None:
    from app.batch.gates import BuildRefused
    from app.batch.transaction import KEEP_REFUSED_RUNS, REFUSED_DIR
    from app.training.pipeline import build

    source = copy_source(shop_source, tmp_path / "shop")
    _rewrite(source / "shop.inter", _all_invalid)
    for _ in range(KEEP_REFUSED_RUNS + 2):
        with pytest.raises(BuildRefused):
            build(versioned_home, source)

    kept = sorted(p.name for p in (versioned_home.versions_dir / REFUSED_DIR).iterdir())
    newest = read_history(versioned_home.versions_dir)[-KEEP_REFUSED_RUNS:]
    assert kept == sorted(record.run_id for record in newest)


def test_a_run_killed_mid_switch_is_repaired_by_the_next_run(
    versioned_home: Settings, shop_source: Path, tmp_path: Path
) -> None:
    from app.batch.gates import BuildRefused
    from app.training.pipeline import build

    before = home_state(versioned_home)
    # As a run killed after moving the live data aside, before moving its staged copy in.
    data = versioned_home.data_dir
    data.rename(data.with_name(".data.retired-killed"))
    (versioned_home.versions_dir / ".staging-killed").mkdir()
    source = copy_source(shop_source, tmp_path / "shop")
    _rewrite(source / "shop.inter", _all_invalid)

    with pytest.raises(BuildRefused):
        build(versioned_home, source)

    assert home_state(versioned_home) == before
    assert not (versioned_home.versions_dir / ".staging-killed").exists()
    assert not data.with_name(".data.retired-killed").exists()
