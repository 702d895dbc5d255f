from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.experiments.assignment import (
    TRAFFIC_SALT,
    assign,
    choose_variant,
    is_enrolled,
    unit_hash,
)
from app.experiments.config import DiversifiedStrategy
from tests.experiments.factories import experiment

NOW = datetime(2025, 6, 15, 12, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
USERS = [f"user-{i}" for i in range(100_000)]


def _within(observed: int, n: int, p: float, sds: float = 4.5) -> bool:
    """``observed`` successes in ``n`` trials lie within ``sds`` binomial SDs of ``n * p``."""
    return abs(observed - n * p) <= sds * math.sqrt(n * p * (1 - p))


def _three_way() -> list[dict[str, object]]:
    return [
        {"name": "control", "weight": 1, "strategy": {"kind": "model"}},
        {"name": "b", "weight": 2, "strategy": {"kind": "popular"}},
        {"name": "c", "weight": 1, "strategy": {"kind": "diversified", "lambda": 0.3}},
    ]


def test_assignment_is_identical_in_another_process_with_another_hash_seed() -> None:
    exp = experiment("cross-process", traffic_share=0.5, variants=_three_way())
    users = USERS[:3000]
    here = [
        (a.experiment_id, a.variant) if a else None
        for a in (assign([exp], u, segment=None, device=None, now=NOW) for u in users)
    ]
    script = f"""
import json
from datetime import datetime
from app.experiments.assignment import assign
from tests.experiments.factories import experiment
exp = experiment("cross-process", traffic_share=0.5, variants={_three_way()!r})
now = datetime.fromisoformat({NOW.isoformat()!r})
out = []
for i in range(3000):
    a = assign([exp], f"user-{{i}}", segment=None, device=None, now=now)
    out.append([a.experiment_id, a.variant] if a else None)
print(json.dumps(out))
"""
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    there = [tuple(a) if a else None for a in json.loads(result.stdout)]
    assert there == here
    assert None in here  # the traffic share really split the users
    assert {a[1] for a in here if a} == {"control", "b", "c"}


def test_assignment_is_sticky_across_calls_and_rebuilt_configs() -> None:
    first = experiment("sticky", traffic_share=0.5, variants=_three_way())
    rebuilt = experiment("sticky", traffic_share=0.5, variants=_three_way())
    for user in USERS[:500]:
        answers = {
            assign([config], user, segment=None, device=None, now=NOW + timedelta(hours=h))
            for config in (first, rebuilt)
            for h in range(3)
        }
        assert len(answers) == 1


def test_traffic_share_is_accurate_over_100k_users() -> None:
    exp = experiment("share", traffic_share=0.3)
    enrolled = sum(is_enrolled(exp, user) for user in USERS)
    assert _within(enrolled, len(USERS), 0.3)


def test_variant_proportions_follow_weights() -> None:
    exp = experiment("weights", variants=_three_way())
    counts = Counter(choose_variant(exp, user).name for user in USERS)
    assert _within(counts["control"], len(USERS), 0.25)
    assert _within(counts["b"], len(USERS), 0.5)
    assert _within(counts["c"], len(USERS), 0.25)


def test_variant_is_independent_of_traffic_bucket() -> None:
    exp = experiment("independent", variants=_three_way())
    low = [u for u in USERS if unit_hash(TRAFFIC_SALT, exp.id, u) < 0.2]
    low_b = sum(choose_variant(exp, u).name == "b" for u in low)
    high = [u for u in USERS if unit_hash(TRAFFIC_SALT, exp.id, u) >= 0.2]
    high_b = sum(choose_variant(exp, u).name == "b" for u in high)
    assert _within(low_b, len(low), 0.5)
    assert _within(high_b, len(high), 0.5)


def test_raising_traffic_share_keeps_enrolled_users_in_their_variant() -> None:
    small = experiment("ramp", traffic_share=0.2, variants=_three_way())
    large = experiment("ramp", traffic_share=0.6, variants=_three_way())
    before = {u: assign([small], u, segment=None, device=None, now=NOW) for u in USERS[:20_000]}
    after = {u: assign([large], u, segment=None, device=None, now=NOW) for u in USERS[:20_000]}
    enrolled_before = {u: a for u, a in before.items() if a is not None}
    assert all(after[u] == a for u, a in enrolled_before.items())
    assert sum(a is not None for a in after.values()) > 2 * len(enrolled_before)


def test_assignment_carries_the_variant_strategy() -> None:
    exp = experiment("strategy")
    answers = [assign([exp], u, segment=None, device=None, now=NOW) for u in USERS[:200]]
    treated = next(a for a in answers if a is not None and a.variant == "treatment")
    assert isinstance(treated.strategy, DiversifiedStrategy)
    assert treated.strategy.lambda_ == 0.5


@pytest.mark.parametrize(
    ("segment", "device", "applies"),
    [
        ("new", "ios", True),
        ("loyal", "android", True),
        ("new", "web", False),
        ("churned", "ios", False),
        (None, "ios", False),
        ("new", None, False),
    ],
)
def test_targeting_by_segment_and_device(
    segment: str | None, device: str | None, applies: bool
) -> None:
    exp = experiment(
        "targeted", targeting={"segments": ["new", "loyal"], "devices": ["ios", "android"]}
    )
    answer = assign([exp], "user-1", segment=segment, device=device, now=NOW)
    assert (answer is not None) == applies


def test_untargeted_experiment_takes_any_request() -> None:
    exp = experiment("everyone")
    assert assign([exp], "user-1", segment=None, device=None, now=NOW) is not None
    assert assign([exp], "user-1", segment="x", device="tv", now=NOW) is not None


def test_time_window_is_start_inclusive_stop_exclusive() -> None:
    start, stop = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    exp = experiment("window", start=start, stop=stop)

    def applies(now: datetime) -> bool:
        return assign([exp], "user-1", segment=None, device=None, now=now) is not None

    assert not applies(start - timedelta(microseconds=1))
    assert applies(start)
    assert applies(stop - timedelta(microseconds=1))
    assert not applies(stop)


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        assign([experiment()], "user-1", segment=None, device=None, now=datetime(2025, 6, 1))


def test_first_matching_experiment_in_config_order_wins() -> None:
    ios_only = experiment("ios-only", targeting={"devices": ["ios"]})
    everyone = experiment("everyone")
    on_ios = assign([ios_only, everyone], "user-1", segment=None, device="ios", now=NOW)
    on_web = assign([ios_only, everyone], "user-1", segment=None, device="web", now=NOW)
    assert on_ios is not None
    assert on_ios.experiment_id == "ios-only"
    assert on_web is not None
    assert on_web.experiment_id == "everyone"


def test_users_outside_an_earlier_traffic_share_fall_through() -> None:
    half = experiment("half", traffic_share=0.5)
    rest = experiment("rest", traffic_share=1.0)
    answers = Counter(
        a.experiment_id if a else None
        for a in (
            assign([half, rest], u, segment=None, device=None, now=NOW) for u in USERS[:20_000]
        )
    )
    assert set(answers) == {"half", "rest"}
    assert _within(answers["half"], 20_000, 0.5)
    alone = sum(
        assign([half], u, segment=None, device=None, now=NOW) is None for u in USERS[:20_000]
    )
    assert alone == answers["rest"]  # without "rest" those users get the default (None)
