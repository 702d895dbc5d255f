"""``recserve data history``, ``recserve data rollback --to VERSION``, ``recserve data vacuum
--keep N`` and ``recserve status``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.settings import Settings


def add_batch_commands(sub: Any) -> None:
    """Add ``data`` (history, rollback, vacuum) and ``status`` to the ``recserve`` sub-commands."""
    data = sub.add_parser(
        "data", help="the versions of the data and models: list, roll back, vacuum"
    )
    actions = data.add_subparsers(required=True, metavar="ACTION")
    history = actions.add_parser("history", help="every build and rollback, newest last")
    history.add_argument("--last", type=int, default=20, help="how many runs to list")
    history.set_defaults(handler=_history)
    rollback = actions.add_parser(
        "rollback", help="make an earlier data version and its model current again"
    )
    rollback.add_argument(
        "--to",
        type=int,
        required=True,
        metavar="VERSION",
        dest="version",
        help="a data version from `recserve data history`",
    )
    rollback.set_defaults(handler=_rollback)
    vacuum = actions.add_parser(
        "vacuum",
        help="remove the data versions (table files and their models) older than the last N",
    )
    vacuum.add_argument(
        "--keep",
        type=int,
        required=True,
        metavar="N",
        help="data versions to keep, newest first (at least 1: the current one is always kept)",
    )
    vacuum.set_defaults(handler=_vacuum)
    status = sub.add_parser(
        "status", help="last build and its outcome, data and model in use, event-log lag"
    )
    status.set_defaults(handler=_status)


def _history(args: argparse.Namespace, settings: Settings) -> int:
    from app.data.versions import read_history

    records = read_history(settings.versions_dir)[-args.last :]
    if not records:
        print("no build has run in this home yet")
        return 0
    print(f"{'version':>7}  {'finished (UTC)':<19}  {'outcome':<18}  {'model':<26}  rows / message")
    for r in records:
        version = "-" if r.data_version is None else str(r.data_version)
        rows = ", ".join(f"{name} {count}" for name, count in r.rows.items())
        detail = rows if r.outcome == "published" else " ".join(filter(None, [r.message, rows]))
        print(
            f"{version:>7}  {r.finished_at:%Y-%m-%d %H:%M:%S}  {r.outcome:<18}  "
            f"{r.model_version or '-':<26}  {detail}"
        )
    return 0


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    from app.batch.gates import BuildRefused
    from app.batch.lock import BatchBusy, batch_lock
    from app.batch.restore import rollback

    try:
        with batch_lock(settings.home, "rollback"):
            record = rollback(settings, args.version)
    except (BuildRefused, BatchBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"data version {args.version} is current again as data version {record.data_version}, "
        f"serving model {record.model_version}"
    )
    return 0


def _vacuum(args: argparse.Namespace, settings: Settings) -> int:
    from app.batch.lock import BatchBusy, batch_lock
    from app.batch.vacuum import vacuum

    if args.keep < 1:
        print("error: --keep must be at least 1 (the current version)", file=sys.stderr)
        return 2
    try:
        with batch_lock(settings.home, "vacuum"):
            print(vacuum(settings, args.keep).format())
    except BatchBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from app.artifacts import current_version
    from app.data.versions import current_record, read_history

    history = read_history(settings.versions_dir)
    builds = [r for r in history if r.outcome in ("published", "refused", "failed")]
    current = current_record(settings.versions_dir)
    last = builds[-1] if builds else None
    lines = [
        "last build: "
        + (
            "none"
            if last is None
            else f"{last.finished_at:%Y-%m-%d %H:%M:%S} UTC, {last.outcome}"
            + (f": {last.message}" if last.message else "")
        ),
        "data version: "
        + (
            "none"
            if current is None
            else f"{current.data_version} ({current.outcome} "
            f"{current.finished_at:%Y-%m-%d %H:%M:%S} UTC)"
        ),
        f"model: {current_version(settings.model_root) or 'none published'}",
        f"event log lag: {_event_log_lag(settings)}",
    ]
    print("\n".join(lines))
    return 0 if last is None or last.outcome == "published" else 1


def _event_log_lag(settings: Settings) -> str:
    """Events logged but not yet copied for training, or why that is unknown."""
    import asyncio

    from app.events.log import open_event_log
    from app.events.sink import OFFLINE_GROUP

    async def lag() -> int:
        event_log = open_event_log(settings)
        try:
            return await event_log.lag(OFFLINE_GROUP)
        finally:
            await event_log.close()

    try:
        return f"{asyncio.run(lag())} events not yet copied for training"
    except Exception as exc:  # any backend failure: status still answers the rest
        return f"unknown ({type(exc).__name__}: {exc})"
