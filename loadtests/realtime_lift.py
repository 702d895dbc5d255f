"""Real-time lift: how much a user's next ``/recommend`` improves once their latest
interactions are posted to ``POST /events``, and how soon the answer reflects them.

    python -m loadtests.realtime_lift --data DIR [--users N] [--json OUT]

The dataset is split with the warm protocol (``recserve evaluate``) and the train part is built
exactly as ``evaluate`` builds it into a throw-away home. Each test user's held-out
interactions, ordered by (timestamp, item id), are cut in two: the first half (rounded down)
are the *events*, the rest the *targets*; users with a single held-out interaction are left
out. Every user is first asked ``/recommend?k=10`` without any event posted (baseline); then
each user's events are posted and the user asked again. Both lists are scored against the
targets. Everything goes through the real ASGI app in-process (``TestClient``) with the cache
off, so each answer is computed.

Freshness is the time from the start of the POST to the first ``/recommend`` answer that
reflects the events: none of the posted (non-impression) items is recommended, since the engine
excludes a user's history.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pandas as pd
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.data.types import EVENT_TYPE, ITEM_ID, TIMESTAMP, USER_ID, VALUE, DataFormatError
from app.events.schemas import EARLIEST_TIMESTAMP
from app.events.types import EventType
from app.serving.realtime.profile_updates import NOT_HISTORY
from app.settings import CacheSettings, Settings
from app.training.evaluate_data import ingested_copy, write_train_dataset
from app.training.metrics import user_metrics
from app.training.pipeline import build
from app.training.split import EvaluationSplit, warm_split
from loadtests.latency import percentiles

K = 10
ONLINE_TYPES = frozenset(get_args(EventType))
FALLBACK_TYPE = "view"  # imported "interaction" rows have no online counterpart
REFLECT_TIMEOUT_SECONDS = 2.0
# The lift's targets, and what EASE alone reaches on ml-100k, printed for comparison.
TARGET_NDCG_AFTER = 0.18
TARGET_RATIO = 1.4
REFERENCE = {"EASE folding in events": (0.115, 0.147), "EASE+transitions blend": (0.118, 0.180)}


@dataclass(frozen=True)
class UserSession:
    """One test user: ``events`` to post (held-out rows, oldest first) and the distinct
    ``targets`` after them that the user had not interacted with in train or in the events."""

    user_id: str
    events: pd.DataFrame
    targets: frozenset[str]


def user_sessions(interactions: pd.DataFrame, split: EvaluationSplit) -> list[UserSession]:
    """Cut every user's held-out interactions into events (first half, rounded down) and
    targets; users with one held-out row, or no new target item, are left out."""
    keys = [USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE]
    # Validation rejects repeated (user, item, timestamp, type) rows, so this anti-join is exact.
    marked = interactions.merge(split.train[keys], on=keys, how="left", indicator=True)
    test = marked[marked["_merge"] == "left_only"].drop(columns="_merge")
    test = test.sort_values([USER_ID, TIMESTAMP, ITEM_ID], kind="stable")
    seen: dict[str, set[str]] = {}
    for user, item in zip(split.train[USER_ID], split.train[ITEM_ID], strict=True):
        seen.setdefault(str(user), set()).add(str(item))
    sessions = []
    for user_id, rows in test.groupby(USER_ID, sort=True):
        if len(rows) < 2:
            continue
        events, later = rows.iloc[: len(rows) // 2], rows.iloc[len(rows) // 2 :]
        known = seen.get(str(user_id), set()) | set(events[ITEM_ID].astype(str))
        targets = frozenset(later[ITEM_ID].astype(str)) - known
        if targets:
            sessions.append(UserSession(str(user_id), events, targets))
    return sessions


def build_train_home(source: Path, work: Path, tuning_budget_seconds: float) -> Settings:
    """Build the warm-protocol train part of ``source`` into ``work/home``, cache off."""
    settings = Settings(
        home=work / "home",
        redis_url=None,
        models_dir=None,
        cache=CacheSettings(enabled=False),
    )
    build(settings, work / "source" / source.name, tuning_budget_seconds=tuning_budget_seconds)
    return settings


def run(
    source: Path, *, max_users: int | None = None, tuning_budget_seconds: float = 120.0
) -> dict[str, Any]:
    """The whole benchmark on the RecBole atomic dataset ``source``; the report as a dict."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with ingested_copy(source, "the benchmark") as copy:
        work, interactions = copy.work, copy.dataset.interactions
        split = warm_split(interactions)
        write_train_dataset(split.train, source, work / "source" / source.name)
        settings = build_train_home(source, work, tuning_budget_seconds)
        sessions = user_sessions(interactions, split)[:max_users]
        if not sessions:
            raise DataFormatError(f"{source}: no user has two or more held-out interactions")
        seconds["split+build"] = time.perf_counter() - started
        with TestClient(create_app(settings)) as client:
            report = _measure(client, sessions, seconds)
    report["dataset"] = source.name
    report["seconds"] = {step: round(value, 1) for step, value in seconds.items()}
    return report


def _measure(
    client: TestClient, sessions: Sequence[UserSession], seconds: dict[str, float]
) -> dict[str, Any]:
    started = time.perf_counter()
    # All baselines first: posting one user's events must not be able to touch another's.
    before = [_recommend(client, s.user_id) for s in sessions]
    seconds["baseline"] = time.perf_counter() - started
    started = time.perf_counter()
    shift = _timestamp_shift(sessions)
    after, freshness_ms, stale = [], [], 0
    next_id = 0
    for session in sessions:
        payload = _event_payload(session, next_id, shift)
        next_id += len(payload)
        posted = time.perf_counter()
        _post(client, payload, session.user_id)
        answer, reflected = _first_reflecting_answer(client, session)
        freshness_ms.append((time.perf_counter() - posted) * 1000)
        stale += not reflected
        after.append(answer)
    seconds["events+after"] = time.perf_counter() - started
    targets = [s.targets for s in sessions]
    scores = {
        "before": _scores(before, targets),
        "after": _scores(after, targets),
    }
    ratio = scores["after"]["ndcg"] / scores["before"]["ndcg"] if scores["before"]["ndcg"] else 0
    return {
        "k": K,
        "users": len(sessions),
        "events_posted": next_id,
        "timestamp_shift_seconds": shift,
        **scores,
        "ndcg_ratio": round(ratio, 3),
        "freshness": percentiles(freshness_ms),
        "stale_users": stale,
        "targets_met": scores["after"]["ndcg"] >= TARGET_NDCG_AFTER and ratio >= TARGET_RATIO,
    }


def _timestamp_shift(sessions: Sequence[UserSession]) -> float:
    """Seconds added to every event so the earliest is after the API's 2000-01-01 floor (0 when
    already so): one constant keeps their order and gaps, and keeps them after the train part."""
    earliest = min(float(s.events[TIMESTAMP].min()) for s in sessions)
    return max(0.0, math.ceil(EARLIEST_TIMESTAMP + 86_400 - earliest))


def _event_payload(session: UserSession, first_id: int, shift: float) -> list[dict[str, Any]]:
    payload = []
    for offset, row in enumerate(session.events.itertuples(index=False)):
        kind = getattr(row, EVENT_TYPE)
        value = getattr(row, VALUE)
        event: dict[str, Any] = {
            "event_id": f"lift-{first_id + offset:09d}",
            "user_id": session.user_id,
            "item_id": str(getattr(row, ITEM_ID)),
            "type": kind if kind in ONLINE_TYPES else FALLBACK_TYPE,
            "timestamp": float(getattr(row, TIMESTAMP)) + shift,
        }
        if value is not None and math.isfinite(value):
            event["value"] = float(value)
        payload.append(event)
    return payload


def _post(client: TestClient, payload: list[dict[str, Any]], user_id: str) -> None:
    response = client.post("/events", json={"events": payload})
    body = response.json()
    if response.status_code != 200 or body["accepted_count"] != len(payload):
        raise RuntimeError(f"POST /events for user {user_id}: HTTP {response.status_code} {body}")


def _recommend(client: TestClient, user_id: str) -> list[str]:
    response = client.get("/recommend", params={"user_id": user_id, "k": K})
    if response.status_code != 200:
        raise RuntimeError(f"/recommend for user {user_id}: HTTP {response.status_code}")
    return [item["item_id"] for item in response.json()["items"]]


def _first_reflecting_answer(client: TestClient, session: UserSession) -> tuple[list[str], bool]:
    """The first answer holding none of the posted history items, polled for at most
    ``REFLECT_TIMEOUT_SECONDS``; (last answer, False) when none did."""
    history = set(session.events[ITEM_ID][~session.events[EVENT_TYPE].isin(NOT_HISTORY)])
    deadline = time.perf_counter() + REFLECT_TIMEOUT_SECONDS
    while True:
        answer = _recommend(client, session.user_id)
        if history.isdisjoint(answer):
            return answer, True
        if time.perf_counter() > deadline:
            return answer, False


def _scores(recommended: list[list[str]], targets: list[frozenset[str]]) -> dict[str, float]:
    metrics = user_metrics(recommended, targets, K)
    return {
        "ndcg": round(float(metrics.ndcg.mean()), 4),
        "recall": round(float(metrics.recall.mean()), 4),
        "hit_rate": round(float(metrics.hit.mean()), 4),
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as the lines the command prints."""
    before, after, fresh = report["before"], report["after"], report["freshness"]
    shift = report["timestamp_shift_seconds"]
    lines = [
        f"dataset {report['dataset']}: {report['users']} users, "
        f"{report['events_posted']} events posted (timestamps +{shift:.0f} s)",
        f"{'':10}{'NDCG@10':>9}{'recall@10':>11}{'HR@10':>8}",
        *(
            f"{name:10}{s['ndcg']:>9.4f}{s['recall']:>11.4f}{s['hit_rate']:>8.4f}"
            for name, s in (("no events", before), ("events", after))
        ),
        f"NDCG@10 ratio after/before: {report['ndcg_ratio']:.3f}",
        f"freshness (POST start -> reflecting /recommend): p50 {fresh['p50_ms']} ms, "
        f"p95 {fresh['p95_ms']} ms, p99 {fresh['p99_ms']} ms, max {fresh['max_ms']} ms; "
        f"{report['stale_users']} users never reflected within {REFLECT_TIMEOUT_SECONDS:.0f} s",
        f"targets (NDCG@10 after >= {TARGET_NDCG_AFTER}, ratio >= {TARGET_RATIO}): "
        + ("met" if report["targets_met"] else "NOT met"),
        *(f"reference {name}: {b} -> {a} ({a / b:.2f}x)" for name, (b, a) in REFERENCE.items()),
        "seconds: " + ", ".join(f"{step} {value}" for step, value in report["seconds"].items()),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="RecBole atomic dataset dir")
    parser.add_argument("--users", type=int, default=None, help="first N test users (by id)")
    parser.add_argument("--tuning-budget", type=float, default=120.0, help="build's seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    report = run(args.data, max_users=args.users, tuning_budget_seconds=args.tuning_budget)
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
