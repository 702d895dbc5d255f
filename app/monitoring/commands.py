"""``recserve drift``: the drift of the latest events from the served model's training
snapshot, from the command line (the answer features need a server's sample: ``/ui/drift``)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from typing import Any

from app.artifacts import PublicationError, current_version
from app.events.log import open_event_log
from app.events.types import EventLogUnavailable
from app.monitoring.drift import EVENT_FEATURES
from app.monitoring.drift_job import ALERT_PSI, DriftJob, DriftReport
from app.settings import Settings

EXIT_DRIFT, EXIT_ERROR = 1, 2


def add_drift_command(sub: Any) -> None:
    """Add ``drift`` to the ``recserve`` sub-command set ``sub``."""
    drift = sub.add_parser(
        "drift",
        help="compare the latest events with the served model's training snapshot (PSI per "
        "feature); exits 1 when a feature is at the alert threshold",
    )
    drift.add_argument("--json", action="store_true", help="print the report as JSON")
    drift.set_defaults(handler=_drift)


def _drift(args: argparse.Namespace, settings: Settings) -> int:
    try:
        version = current_version(settings.model_root)
    except (PublicationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if version is None:
        print(f"error: no model published in {settings.model_root}", file=sys.stderr)
        return EXIT_ERROR
    try:
        report = asyncio.run(_report(settings, version))
    except EventLogUnavailable as exc:
        print(f"error: event log unavailable: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if report is None:
        print(
            f"error: model {version} has no drift reference (built before drift detection): "
            "rebuild it with `recserve build`",
            file=sys.stderr,
        )
        return EXIT_ERROR
    report = dataclasses.replace(
        report, features=[f for f in report.features if f.feature in EVENT_FEATURES]
    )
    print(json.dumps(report.to_json(), indent=2) if args.json else report.format())
    drifted = any(f.psi is not None and f.psi >= ALERT_PSI for f in report.features)
    return EXIT_DRIFT if drifted else 0


async def _report(settings: Settings, version: str) -> DriftReport | None:
    event_log = open_event_log(settings)
    try:
        return await DriftJob(event_log, lambda: settings.model_root / version).run_once()
    finally:
        await event_log.close()
