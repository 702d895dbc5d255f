"""The benchmark runner against a URL (a real server on loopback, the real load generator) and
over several rounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from loadtests.bench import (
    Target,
    across_rounds,
    cache_hits,
    check_targets,
    main,
    parse_target,
)
from loadtests.client import recommend_requests
from loadtests.server import ceiling_argv, free_port, running
from tests.conftest import TEST_REDIS_URL


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://127.0.0.1:8123", Target("127.0.0.1", 8123, "")),
        ("http://recs.internal/api/", Target("recs.internal", 80, "/api")),
    ],
)
def test_a_url_names_host_port_and_prefix(url: str, target: Target) -> None:
    assert parse_target(url) == target


@pytest.mark.parametrize(
    ("url", "authority"),
    [
        ("http://recs.internal", "recs.internal"),
        ("http://127.0.0.1:8123/api", "127.0.0.1:8123"),
        ("http://[::1]:8000", "[::1]:8000"),
    ],
)
def test_the_host_header_carries_a_port_that_is_not_the_default(url: str, authority: str) -> None:
    assert parse_target(url).authority == authority


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("https://recs.internal", "only http://"),
        ("http://:8000", "no host"),
        ("http://127.0.0.1:99999", "Port out of range"),
        ("http://127.0.0.1:8000/?user_id=1", "no query"),
    ],
)
def test_an_unusable_url_is_refused_with_the_reason(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_target(url)


def test_requests_carry_the_prefix_host_and_key() -> None:
    (request,) = recommend_requests(
        ["u 1"], 5, host="recs.internal", prefix="/api", headers=[("X-API-Key", "secret")]
    )
    assert request == (
        b"GET /api/recommend?user_id=u%201&k=5 HTTP/1.1\r\n"
        b"Host: recs.internal\r\nX-API-Key: secret\r\n\r\n"
    )


def test_it_loads_a_running_server_and_the_ceiling_in_one_run(
    home: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = tmp_path / "bench.json"
    quick = ["--duration", "0.5", "--warmup", "0.2", "--connections", "4", "--workers", "1"]
    with running(ceiling_argv(port, 1), port):  # any server answering GET /recommend
        main(["--home", str(home.home), "--url", url, *quick, "--json", str(out)])

    phases = json.loads(out.read_text())["phases"]
    assert list(phases) == [f"{url}, closed", f"{url}, open", "ceiling, closed", "ceiling, open"]
    target = phases[f"{url}, closed"]
    assert target["errors"] == 0
    assert set(target["statuses"]) == {"200"}
    assert target["rps"] > 0
    assert target["x_ceiling"] > 0
    # A loopback target's CPU is found through the port it listens on.
    assert target["server_cpu_core"] > 0
    assert target["server_cpu_us_per_request"] > 0
    (worker,) = target["server_memory_per_worker"]  # one worker served it
    assert 0 < worker["uss_mb"] <= worker["pss_mb"] <= worker["rss_mb"]
    assert phases[f"{url}, open"]["target_rps"] == pytest.approx(target["rps"] / 2, abs=0.1)
    assert f"target={url}" in capsys.readouterr().out


def test_rounds_repeat_the_run_and_summarise_it(home: Settings, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = tmp_path / "bench.json"
    quick = ["--duration", "0.3", "--warmup", "0.1", "--connections", "2", "--workers", "1"]
    with running(ceiling_argv(port, 1), port):
        main(["--home", str(home.home), "--url", url, *quick, "--rounds", "2", "--json", str(out)])

    report = json.loads(out.read_text())
    assert len(report["rounds"]) == 2
    assert report["phases"] == report["rounds"][0]
    closed = report["summary"][f"{url}, closed"]
    ratios = [phases[f"{url}, closed"]["x_ceiling"] for phases in report["rounds"]]
    assert closed["rounds"] == 2
    assert (closed["x_ceiling_min"], closed["x_ceiling_max"]) == (min(ratios), max(ratios))
    assert closed["errors"] == 0


def test_it_measures_both_stores_and_checks_the_targets_in_one_run(
    home: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    quick = ["--duration", "0.3", "--warmup", "0.1", "--connections", "2", "--workers", "1"]
    # The same home on Redis: its users are unknown there (popular answers, which are never
    # cached, hence the cache off), but the server reads Redis for every request.
    stores = ["--redis-home", str(home.home), "--redis-url", TEST_REDIS_URL, "--cache", "off"]
    main(["--home", str(home.home), *stores, *quick, "--json", str(out)])

    report = json.loads(out.read_text())
    assert list(report["phases"]) == [
        "full pipeline (cache off, SQLite), closed",
        "full pipeline (cache off, SQLite), open",
        "full pipeline (cache off, Redis), closed",
        "full pipeline (cache off, Redis), open",
        "ceiling, closed",
        "ceiling, open",
    ]
    phases = report["phases"]
    assert all(phase["errors"] == 0 and phase["rps"] > 0 for phase in phases.values())
    # Each store's open loop runs at half its own maximum.
    for store in ("SQLite", "Redis"):
        closed = phases[f"full pipeline (cache off, {store}), closed"]
        opened = phases[f"full pipeline (cache off, {store}), open"]
        assert opened["target_rps"] == pytest.approx(closed["rps"] / 2, abs=0.1)
    checked = [(check["phase"], check["met"]) for check in report["targets"]]
    assert [phase for phase, _ in checked] == list(phases)[:4]
    out_text = capsys.readouterr().out
    for phase, met in checked:
        verdict = "met" if met else "NOT MET"
        assert sum(line.startswith(f"target {phase}: ") for line in out_text.splitlines()) == 1
        assert any(
            line.startswith(f"target {phase}: ") and line.endswith(f": {verdict}")
            for line in out_text.splitlines()
        )
    assert ("every target met in this round" in out_text) == all(met for _, met in checked)


def _targets_round(full: float, p99: float, hit: float, errors: int = 0) -> dict[str, Any]:
    return {
        "full pipeline (cache off, SQLite), closed": {"x_ceiling": full, "errors": 0},
        "full pipeline (cache off, SQLite), open": {"p99_ms": p99, "errors": errors},
        "cache hit (hot set, Redis), closed": {"x_ceiling": hit, "errors": 0},
        "cache hit (hot set, Redis), open": {"p99_ms": 50.0, "errors": 0},  # no target
        "ceiling, closed": {"x_ceiling": 1.0, "errors": 0},
    }


@pytest.mark.parametrize(
    ("phases", "verdicts"),
    [
        (_targets_round(0.3, 10.0, 0.6), [True, True, True]),  # every limit is inclusive
        (_targets_round(0.29, 10.0, 0.6), [False, True, True]),
        (_targets_round(0.5, 10.1, 0.9), [True, False, True]),
        (_targets_round(0.5, 3.0, 0.9, errors=1), [True, False, True]),
        (_targets_round(0.5, 3.0, 0.59), [True, True, False]),
    ],
)
def test_targets_are_the_throughput_limits(phases: dict[str, Any], verdicts: list[bool]) -> None:
    checks = check_targets(phases)
    assert [check["phase"] for check in checks] == list(phases)[:3]
    assert [check["met"] for check in checks] == verdicts


def _phase(ratio: float, p99: float, cpu: int | None, errors: int = 0) -> dict[str, Any]:
    return {
        "x_ceiling": ratio,
        "rps": ratio * 1000,
        "p99_ms": p99,
        "errors": errors,
        "server_cpu_us_per_request": cpu,
    }


def test_across_rounds_takes_medians_and_extremes() -> None:
    rounds = [
        {"a": _phase(0.2, 5.0, 700), "b": _phase(1.0, 1.0, None)},
        {"a": _phase(0.3, 9.0, 600, errors=2), "b": _phase(1.0, 2.0, 150)},
        {"a": _phase(0.25, 4.0, 650), "b": _phase(1.0, 3.0, 160)},
    ]
    summary = across_rounds(rounds)
    assert summary["a"] == {
        "rounds": 3,
        "x_ceiling_median": 0.25,
        "x_ceiling_min": 0.2,
        "x_ceiling_max": 0.3,
        "rps_median": 250.0,
        "p99_ms_median": 5.0,
        "p99_ms_max": 9.0,
        "errors": 2,
        "server_cpu_us_per_request_median": 650,
    }
    # A round without a CPU reading (a remote target) gives no CPU median.
    assert summary["b"]["server_cpu_us_per_request_median"] is None


def test_across_rounds_keeps_a_phase_only_some_rounds_have() -> None:
    rounds = [
        {"a": _phase(0.2, 5.0, 700)},
        {"b": _phase(0.9, 2.0, 150)},
        {"a": _phase(0.4, 3.0, 500)},
    ]
    summary = across_rounds(rounds)
    assert list(summary) == ["a", "b"]
    assert (summary["a"]["rounds"], summary["a"]["x_ceiling_median"]) == (2, 0.3)
    assert (summary["b"]["rounds"], summary["b"]["x_ceiling_max"]) == (1, 0.9)


def test_cache_hits_count_answers_from_a_tier() -> None:
    assert cache_hits({"cache_tiers": {"local": 5, "redis": 2, "null": 9}}) == 7
    assert cache_hits({"cache_tiers": {"null": 9}}) == 0  # a server without a cache
    assert cache_hits({"cache_tiers": {"-": 9}}) == 0  # not a recserve answer


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--url", "https://x"], "only http://"),
        (["--api-key", "k"], "--api-key is sent to a --url target"),
        (["--url", "http://127.0.0.1:1", "--redis-url", "redis://x"], "not with --url"),
        (["--redis-home", "."], "give --redis-url too"),
        (["--redis-home", "/nowhere", "--redis-url", "redis://x"], "--redis-home /nowhere: not"),
        (["--rounds", "0"], "--rounds must be at least 1"),
    ],
)
def test_option_mistakes_are_refused(
    home: Settings, options: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--home", str(home.home), *options])
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_a_home_that_was_never_built_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["--home", str(tmp_path)])
    assert "not a built home" in capsys.readouterr().err
