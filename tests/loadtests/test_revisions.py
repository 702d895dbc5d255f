"""The revision comparison's parts: trees unpacked from git, the order rotating between rounds,
and the ratios to each round's ceiling."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from loadtests.revisions import CEILING, ratios, rotated, unpack


def test_a_revision_unpacks_to_a_tree_holding_that_revisions_code(tmp_path: Path) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()

    tree = unpack(head, tmp_path)

    assert tree.parent == tmp_path
    assert (tree / "app" / "api" / "main.py").read_bytes() == Path("app/api/main.py").read_bytes()


def test_every_revision_takes_every_place_in_turn() -> None:
    names = ["a", "b", "c"]

    orders = [rotated(names, index) for index in range(3)]

    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert rotated(names, 3) == names


def _phase(rps: float, p99_ms: float, us: int = 100, errors: int = 0) -> dict[str, Any]:
    return {"rps": rps, "p99_ms": p99_ms, "server_cpu_us_per_request": us, "errors": errors}


def test_ratios_are_taken_against_each_rounds_own_ceiling() -> None:
    rounds = [
        {
            "rev": {"closed": _phase(100, 10, 300), "open": _phase(50, 20, errors=1)},
            CEILING: {"closed": _phase(1000, 1), "open": _phase(50, 2)},
        },
        {
            "rev": {"closed": _phase(300, 10, 500), "open": _phase(50, 40)},
            CEILING: {"closed": _phase(1000, 1), "open": _phase(50, 2)},
        },
    ]

    summary = ratios(rounds, "rev")

    assert summary["x_ceiling_mean"] == pytest.approx(0.2)
    assert summary["x_ceiling_sd"] == pytest.approx(0.141, abs=1e-3)
    assert summary["p99_x_ceiling_mean"] == pytest.approx(15.0)
    assert summary["server_us_per_answer_mean"] == 400
    assert summary["errors"] == 1
