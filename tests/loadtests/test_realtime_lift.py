"""The real-time lift benchmark: the events/targets cut on a hand-made frame, and one whole run
on a tiny synthetic shop through the real ASGI app (real build, SQLite log, Feast, ONNX)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.data.synthetic import generate_shop
from app.data.types import EVENT_TYPE, ITEM_ID, TIMESTAMP, USER_ID, VALUE
from app.training.split import EvaluationSplit
from loadtests.realtime_lift import format_report, run, user_sessions


def _frame(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[USER_ID, ITEM_ID, TIMESTAMP])
    frame[EVENT_TYPE] = "view"
    frame[VALUE] = float("nan")
    return frame


def test_sessions_post_the_first_half_and_target_the_rest() -> None:
    train = _frame([("a", "i1", 1), ("b", "i1", 1)])
    test = _frame(
        [
            ("a", "i5", 14),  # out of time order on purpose
            ("a", "i2", 11),
            ("a", "i3", 12),
            ("a", "i1", 13),  # seen in train: never a target
            ("a", "i4", 13),
            ("b", "i9", 5),  # a single held-out row: user left out
        ]
    )
    split = EvaluationSplit(train=train, relevant={})

    sessions = user_sessions(pd.concat([train, test], ignore_index=True), split)

    assert [s.user_id for s in sessions] == ["a"]
    assert list(sessions[0].events[ITEM_ID]) == ["i2", "i3"]
    assert sessions[0].targets == frozenset({"i4", "i5"})


@pytest.mark.integration
def test_run_posts_every_event_and_every_answer_reflects_them(tmp_path: Path) -> None:
    source = generate_shop(tmp_path, n_users=80, n_items=80, n_events=2500, seed=5)

    report = run(source, max_users=10, tuning_budget_seconds=2)

    assert report["users"] == 10
    assert report["events_posted"] > report["users"]
    assert report["stale_users"] == 0
    assert report["freshness"]["n"] == 10
    for phase in ("before", "after"):
        assert 0.0 <= report[phase]["ndcg"] <= report[phase]["hit_rate"] <= 1.0
    assert "NDCG@10 ratio after/before" in format_report(report)
