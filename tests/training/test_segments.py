"""RFM segmentation: cluster choice, engagement-ordered names, new users, and the Feast view."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from app.features.client import FeastFeatureClient
from app.features.schema import NEW_USER_SEGMENT, USER_SEGMENTS_VIEW
from app.settings import Settings
from app.training.segments import assign_segments, rfm_table

DAY = 86_400


def _behaviour(groups: list[tuple[int, float, int, float]], seed: int = 0) -> pd.DataFrame:
    """Users in groups of (size, days since last event, interactions, spend), with jitter."""
    rng = np.random.default_rng(seed)
    rows = []
    end = 1_000 * DAY
    for g, (size, days, count, spend) in enumerate(groups):
        for u in range(size):
            rows.append(
                {
                    "user_id": f"g{g}-u{u}",
                    "last_event_at": int(end - days * DAY * rng.uniform(0.9, 1.1)),
                    "interaction_count": max(1, int(count * rng.uniform(0.9, 1.1))),
                    "monetary": spend * rng.uniform(0.9, 1.1),
                }
            )
    return pd.DataFrame(rows)


def test_three_separated_groups_give_three_segments_named_by_engagement():
    behaviour = _behaviour([(60, 300, 2, 0.0), (60, 2, 200, 500.0), (60, 40, 20, 50.0)])
    frame, report = assign_segments(behaviour, seed=1)
    assert report.n_clusters == 3
    assert report.silhouette is not None
    assert report.silhouette > 0.5
    segment = dict(zip(frame["user_id"], frame["segment"], strict=True))
    # Each planted group is one segment; the heavy recent spenders are s1, lapsed users s3.
    assert {segment[f"g1-u{u}"] for u in range(60)} == {"s1"}
    assert {segment[f"g2-u{u}"] for u in range(60)} == {"s2"}
    assert {segment[f"g0-u{u}"] for u in range(60)} == {"s3"}
    assert [s.users for s in report.segments] == [60, 60, 60]


def test_attribute_only_users_are_new_and_fixed_k_is_honoured():
    behaviour = _behaviour([(30, 5, 50, 0.0), (30, 200, 3, 0.0)])
    frame, report = assign_segments(behaviour, ["g0-u0", "fresh-1", "fresh-2"], n_clusters=2)
    segment = dict(zip(frame["user_id"], frame["segment"], strict=True))
    assert segment["fresh-1"] == segment["fresh-2"] == NEW_USER_SEGMENT
    assert segment["g0-u0"] == "s1"  # has behaviour: clustered, not "new"
    assert report.new_users == 2
    assert report.n_clusters == 2


def test_recency_is_measured_from_the_latest_event_and_constant_axes_are_tolerated():
    behaviour = _behaviour([(5, 10, 5, 0.0)])
    rfm = rfm_table(behaviour)
    assert rfm["recency_days"].min() == 0.0
    frame, report = assign_segments(behaviour.assign(interaction_count=3, last_event_at=7))
    assert set(frame["segment"]) == {"s1"}
    assert report.silhouette is None


def test_build_serves_segments_through_the_feature_store(built_home: Settings):
    table = pd.read_parquet(built_home.offline_dir / f"{USER_SEGMENTS_VIEW}.parquet")
    assert table["user_id"].is_unique
    assert len(table) > 0
    client = FeastFeatureClient.from_settings(built_home)
    try:
        for user_id, segment in table.sample(5, random_state=0)[["user_id", "segment"]].values:
            features = client.get_user(user_id)
            assert features is not None
            assert features.segment == segment
    finally:
        client.close()


@pytest.mark.parametrize("clusters", [2])
def test_segment_command_rewrites_the_online_segments(built_home: Settings, tmp_path, clusters):
    import shutil

    from app.cli import main

    home = tmp_path / "home"
    shutil.copytree(built_home.home, home)
    assert main(["--home", str(home), "segment", "--clusters", str(clusters)]) == 0
    settings = Settings(home=home)
    table = pd.read_parquet(settings.offline_dir / f"{USER_SEGMENTS_VIEW}.parquet")
    assert set(table["segment"]) - {NEW_USER_SEGMENT} == {"s1", "s2"}
    client = FeastFeatureClient.from_settings(settings)
    try:
        row = table[table["segment"] != NEW_USER_SEGMENT].iloc[0]
        features = client.get_user(row["user_id"])
        assert features is not None
        assert features.segment == row["segment"]
    finally:
        client.close()


def test_segment_changes_are_sent_to_the_crm_webhooks(built_home: Settings, tmp_path):
    """Re-clustering into a different k moves users between segments: each moved user is one
    signed `profile.segment_changed` delivery in the outbox, with the old and new segment."""
    import json
    import shutil

    from app.jobs import notify_segment_changes
    from app.training.segment_job import previous_segments, write_segments
    from app.webhooks.outbox import run_with_outbox

    home = tmp_path / "home"
    shutil.copytree(built_home.home, home)
    settings = Settings(
        home=home,
        segment_clusters=3,
        webhooks={
            "endpoints": [
                {
                    "name": "crm",
                    "url": "http://127.0.0.1:9/hook",
                    "secret": "s" * 32,
                    "events": ["profile.segment_changed"],
                }
            ]
        },
    )
    before = previous_segments(settings)
    write_segments(settings, as_of=datetime.now(UTC))
    after = previous_segments(settings)
    moved = {u for u, s in after.items() if before.get(u) != s}

    assert notify_segment_changes(settings, before) == len(moved) > 0

    async def claim_all(outbox):
        return await outbox.claim("test", limit=10_000, lease_seconds=60)

    deliveries = run_with_outbox(settings, claim_all)
    bodies = [json.loads(d.body) for d in deliveries]
    assert {d.kind for d in deliveries} == {"profile.segment_changed"}
    payloads = [b.get("data", b) for b in bodies]
    assert {p["user_id"] for p in payloads} == moved
    for payload in payloads:
        assert payload["old_segment"] == before.get(payload["user_id"])
        assert payload["new_segment"] == after[payload["user_id"]]


def test_first_segmentation_notifies_nothing(tmp_path):
    from app.jobs import notify_segment_changes

    assert notify_segment_changes(Settings(home=tmp_path), {}) == 0
