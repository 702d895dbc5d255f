"""Batch jobs around the model build: ``recserve consume``, ``recserve segment``,
``recserve precompute``, and the event sink and segment-change notifications ``recserve build``
runs too.

Segment changes go to the CRM webhooks: a user whose segment differs from the previous run's
is one ``profile.segment_changed`` delivery per subscribed endpoint. The first segmentation of
a home changes nothing (there was no segment to change from).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.settings import Settings

if TYPE_CHECKING:
    from app.serving.surfaces.precompute import PrecomputeReport
    from app.training.pipeline import BuildResult


def add_job_commands(sub: Any) -> None:
    """Add ``consume`` and ``segment`` to the ``recserve`` sub-command set ``sub``."""
    consume = sub.add_parser(
        "consume", help="copy new events from the event log into the training data, repeatedly"
    )
    consume.add_argument("--interval", type=float, default=30.0, help="seconds between runs")
    consume.add_argument("--once", action="store_true", help="copy once and exit")
    consume.set_defaults(handler=_consume)

    segment = sub.add_parser(
        "segment", help="cluster users on recency/frequency/monetary (K-Means) into segments"
    )
    segment.add_argument(
        "--clusters", type=int, default=None, help="number of segments (default: by silhouette)"
    )
    add_engine_arguments(segment)
    segment.set_defaults(handler=_segment)

    precompute = sub.add_parser(
        "precompute",
        help="in quiet hours, store the most active users' lists in the shared cache tier",
    )
    precompute.add_argument(
        "--users", type=int, default=None, help="how many users (default: precompute.users)"
    )
    precompute.add_argument(
        "--force", action="store_true", help="run even outside the configured quiet hours"
    )
    precompute.set_defaults(handler=_precompute)


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine`` and ``--spark-master``, which override the batch_engine settings."""
    parser.add_argument(
        "--engine",
        choices=("local", "spark"),
        default=None,
        help="what runs the heavy batch stages: this process (local, the default) or Spark "
        "(extra `spark`, Java 17+); both write the same tables",
    )
    parser.add_argument(
        "--spark-master",
        default=None,
        metavar="URL",
        help="with --engine spark: local[N], spark://HOST:7077 or k8s://https://HOST:PORT "
        "(default local[2])",
    )


def with_engine(settings: Settings, args: argparse.Namespace) -> Settings:
    """``settings`` with the engine flags of ``add_engine_arguments`` applied."""
    update: dict[str, Any] = {}
    if args.engine is not None:
        update["batch_engine"] = args.engine
    if args.spark_master is not None:
        update["spark"] = settings.spark.model_copy(update={"master": args.spark_master})
    return settings.model_copy(update=update) if update else settings


def build_with_events(settings: Settings, source: Path) -> BuildResult:
    """``recserve build``: copy new events out of the log, build on the source plus every
    copied event, then notify segment changes. Raises ``DataFormatError``."""
    from app.events.sink import load_event_parts
    from app.training.pipeline import build
    from app.training.segment_job import previous_segments

    sink_events(settings)
    before = previous_segments(settings)
    result = build(settings, source, logged_events=load_event_parts(settings.event_parts_dir))
    notify_segment_changes(settings, before)
    if settings.keep_data_versions is not None:
        from app.batch.vacuum import vacuum

        print(f"vacuum: {vacuum(settings, settings.keep_data_versions).format()}")
    return result


def sink_events(settings: Settings) -> bool:
    """Copy new events out of the log for training; on failure warn and go on with the events
    copied before (the log keeps the rest for the next run)."""
    from app.events.sink import sink_event_log
    from app.events.types import EventLogUnavailable

    try:
        report = sink_event_log(settings)
    except EventLogUnavailable as exc:
        print(f"warning: event log unavailable, new events wait: {exc}", file=sys.stderr)
        return False
    print(f"event log: {report.events} new events copied in {report.parts} parts")
    return True


def notify_segment_changes(settings: Settings, before: dict[str, str]) -> int:
    """Enqueue a webhook per user whose segment is not what ``before`` says; returns how many
    users changed. A failing outbox is a warning: the segments themselves are written."""
    from app.training.segment_job import previous_segments
    from app.webhooks.config import WebhookConfigError
    from app.webhooks.publisher import SegmentChange, publish_segment_changes
    from app.webhooks.types import OutboxUnavailable

    if not before:
        return 0
    after = previous_segments(settings)
    changes = [
        SegmentChange(user_id, before.get(user_id), segment)
        for user_id, segment in after.items()
        if before.get(user_id) != segment
    ]
    try:
        deliveries = publish_segment_changes(settings, changes)
    except (WebhookConfigError, OutboxUnavailable) as exc:
        print(f"warning: segment change webhooks not sent: {exc}", file=sys.stderr)
        return len(changes)
    print(f"segments: {len(changes)} users changed segment, {deliveries} webhooks enqueued")
    return len(changes)


def _consume(args: argparse.Namespace, settings: Settings) -> int:
    while True:
        ok = sink_events(settings)
        if args.once:
            return 0 if ok else 1
        time.sleep(args.interval)


def _segment(args: argparse.Namespace, settings: Settings) -> int:
    from app.batch.gates import NoUsersToSegment
    from app.batch.lock import BatchBusy, batch_lock
    from app.training.engine import EngineUnavailable
    from app.training.segment_job import previous_segments, refresh_segments

    settings = with_engine(settings, args)
    before = previous_segments(settings)
    try:
        with batch_lock(settings.home, "segment"):
            report, record = refresh_segments(settings, args.clusters)
    except BatchBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except FileNotFoundError as exc:
        print(f"error: {exc}; run `recserve build` first", file=sys.stderr)
        return 2
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NoUsersToSegment as exc:
        print(
            f"error: segments not refreshed: {exc}; the segments in use are unchanged",
            file=sys.stderr,
        )
        return 2
    print(report.format())
    if record is not None:
        print(f"data version {record.data_version}")
    notify_segment_changes(settings, before)
    return 0


async def precompute_peaks(settings: Settings, users: int) -> PrecomputeReport:
    """``recserve precompute`` without the quiet-hours check: the ``users`` most active users'
    lists computed and stored in the shared tier. Raises ``NoSharedCacheTier``, and
    ``FileNotFoundError`` before the first build."""
    from app.bootstrap import (
        build_content_blocks,
        build_experiments,
        build_precompute_tier,
        close_engine,
        engine_with_cache,
    )
    from app.features.active_users import most_active_users
    from app.serving.cache.tiered import TieredCache
    from app.serving.surfaces.precompute import PeakPrecompute

    tier = build_precompute_tier(settings)
    try:
        user_ids = most_active_users(settings.offline_dir, users)
    except FileNotFoundError:
        await tier.close()
        raise
    engine = await engine_with_cache(settings, TieredCache([tier]))
    try:
        experiments, recommender = build_experiments(settings, engine)
        try:
            blocks = build_content_blocks(settings, engine, recommender)
            job = PeakPrecompute(experiments, recommender, blocks, tier)
            plan = settings.precompute
            return await job.run(user_ids, plan.k or [settings.api.default_k], plan.pages)
        finally:
            await experiments.close()
    finally:
        await close_engine(engine)


def _precompute(args: argparse.Namespace, settings: Settings) -> int:
    from app.bootstrap import NoSharedCacheTier
    from app.serving.surfaces.content_blocks import UnknownSlotError
    from app.serving.surfaces.precompute import in_quiet_hours

    plan = settings.precompute
    now = datetime.now(UTC)
    if not args.force and not in_quiet_hours(now, plan.quiet_start_hour, plan.quiet_end_hour):
        print(
            f"outside quiet hours ({plan.quiet_start_hour:02d}:00-{plan.quiet_end_hour:02d}:00 "
            f"UTC, now {now:%H:%M}): nothing precomputed"
        )
        return 0
    users = plan.users if args.users is None else args.users
    try:
        report = asyncio.run(precompute_peaks(settings, users))
    except NoSharedCacheTier as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc}; run `recserve build` first", file=sys.stderr)
        return 2
    except UnknownSlotError as exc:
        print(f"error: precompute.pages: {exc}", file=sys.stderr)
        return 2
    print(report.format())
    return 0 if report.failed == 0 else 1
