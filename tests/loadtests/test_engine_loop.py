"""The engine-loop benchmark on the test suite's built home: real engine, SQLite, ONNX."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from loadtests.engine_loop import main


@pytest.mark.parametrize("concurrency", [1, 4])
def test_it_times_the_full_pipeline_over_the_users_of_the_home(
    home: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    concurrency: int,
) -> None:
    # main() sets these for the engine it builds; monkeypatch puts them back afterwards.
    monkeypatch.setenv("RECSERVE_HOME", str(home.home))
    monkeypatch.setenv("RECSERVE_CACHE__ENABLED", "true")

    options = ["--answers", "60", "--passes", "2", "--warmup", "5"]
    assert main(["--home", str(home.home), *options, "--concurrency", str(concurrency)]) == 0

    out = capsys.readouterr().out
    assert f"60 answers x 2 passes, {concurrency} at a time" in out
    best = float(out.split("best ")[1].split(" ")[0])
    median = float(out.split("median ")[1].split(" ")[0])
    assert 0 < best <= median
    assert "'personalized'" in out  # the model answered, not only the fallback


def test_a_concurrency_below_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--home", str(tmp_path), "--concurrency", "0"])
    assert exited.value.code == 2
    assert "--concurrency" in capsys.readouterr().err


def test_a_home_that_was_never_built_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--home", str(tmp_path)]) == 2
    assert "not a built home" in capsys.readouterr().err
