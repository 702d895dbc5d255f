"""The batch side of the event log: sink to Parquet parts, and builds training on them."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from app.cli import main
from app.events.log import open_event_log
from app.events.sink import OFFLINE_GROUP, drain_to_parquet, load_event_parts
from app.events.types import Event
from app.settings import EventLogSettings, Settings


def _events(n: int, prefix: str, *, user: str = "u1", item: str = "i1") -> list[Event]:
    now = time.time()
    return [
        Event(f"{prefix}-{i}", user, item, "purchase" if i % 2 else "view", now + i, 9.5)
        for i in range(n)
    ]


def test_drain_copies_each_event_once_then_catches_up(tmp_path: Path) -> None:
    async def scenario() -> None:
        log = open_event_log(Settings(home=tmp_path / "home"))
        try:
            await log.append(_events(25, "a"))
            first = await drain_to_parquet(log, tmp_path / "parts", consumer="c", batch=10)
            await log.append(_events(5, "b"))
            second = await drain_to_parquet(log, tmp_path / "parts", consumer="c", batch=10)
            again = await drain_to_parquet(log, tmp_path / "parts", consumer="c", batch=10)
            assert (first.events, first.parts) == (25, 3)
            assert (second.events, again.events) == (5, 0)
            assert await log.lag(OFFLINE_GROUP) == 0
        finally:
            await log.close()

    asyncio.run(scenario())
    frame = load_event_parts(tmp_path / "parts")
    assert len(frame) == 30
    assert list(frame.columns) == ["user_id", "item_id", "event_type", "timestamp", "value"]
    assert set(frame["event_type"]) == {"view", "purchase"}


def test_a_crash_between_part_and_ack_repeats_nothing(tmp_path: Path) -> None:
    """The part is written, the ack never happens: a drain after the ack wait writes the events
    again and loading keeps each event once."""
    events = EventLogSettings(ack_wait_seconds=0.05)

    async def scenario() -> None:
        log = open_event_log(Settings(home=tmp_path / "home", events=events))
        try:
            await log.append(_events(4, "x"))
            await log.read(OFFLINE_GROUP, "c", count=10, block_ms=0)  # delivered, never acked
            assert (await drain_to_parquet(log, tmp_path / "parts", consumer="c")).events == 0
            await asyncio.sleep(0.1)
            crashed = await drain_to_parquet(log, tmp_path / "parts", consumer="c")
            assert crashed.events == 4  # redelivered once the ack wait passed
        finally:
            await log.close()

    asyncio.run(scenario())
    parts = tmp_path / "parts"
    shutil.copy(next(parts.glob("part-*.parquet")), parts / "part-0-copy.parquet")
    assert len(load_event_parts(parts)) == 4


def test_missing_parts_dir_is_no_events(tmp_path: Path) -> None:
    assert load_event_parts(tmp_path / "nothing").empty


@pytest.mark.integration
def test_build_trains_on_events_from_the_log(built_home: Settings, tmp_path: Path) -> None:
    """`recserve build` sinks the log first: posted events become training interactions, and
    impressions or unknown items are left out with a note."""
    home = tmp_path / "home"
    shutil.copytree(built_home.home, home)
    settings = Settings(home=home)
    items = pd.read_parquet(settings.data_dir / "items.parquet")["item_id"].astype(str)
    interactions_before = len(pd.read_parquet(settings.data_dir / "interactions.parquet"))
    now = time.time()
    events = [
        Event("new-1", "brand-new-user", items.iloc[0], "purchase", now, 12.0),
        Event("new-2", "brand-new-user", items.iloc[1], "view", now + 1),
        Event("new-3", "brand-new-user", items.iloc[2], "impression", now + 2),
        Event("new-4", "brand-new-user", "no-such-item", "view", now + 3),
    ]

    async def post() -> None:
        log = open_event_log(settings)
        try:
            await log.append(events)
        finally:
            await log.close()

    asyncio.run(post())
    source = built_home.home.parent / "source" / "shop"
    assert main(["--home", str(home), "build", "--data", str(source)]) == 0

    interactions = pd.read_parquet(settings.data_dir / "interactions.parquet")
    assert len(interactions) == interactions_before + 2
    mine = interactions[interactions["user_id"] == "brand-new-user"]
    assert sorted(mine["item_id"]) == sorted([items.iloc[0], items.iloc[1]])
    assert mine.loc[mine["event_type"] == "purchase", "value"].item() == 12.0
    behaviour = pd.read_parquet(settings.offline_dir / "user_behaviour.parquet")
    assert "brand-new-user" in set(behaviour["user_id"])


def test_lag_gauge_follows_the_offline_consumer(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    from app.serving.realtime.lag_monitor import sample_event_log_lag

    def gauge() -> float | None:
        return REGISTRY.get_sample_value("recserve_event_log_lag_events", {"group": OFFLINE_GROUP})

    async def scenario() -> None:
        log = open_event_log(Settings(home=tmp_path / "home"))
        try:
            await log.append(_events(7, "lag"))
            assert await sample_event_log_lag(log) == 7
            assert gauge() == 7
            await drain_to_parquet(log, tmp_path / "parts", consumer="c")
            assert await sample_event_log_lag(log) == 0
            assert gauge() == 0
        finally:
            await log.close()

    asyncio.run(scenario())
