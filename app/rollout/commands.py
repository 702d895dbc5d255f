"""``recserve rollout status|promote|rollback``: the operator's view of the guarded rollout and
the override of its test.

Works on the home's pointers and record store with or without a server running; the servers'
polls follow the pointers within ``model_poll_seconds``, and their job writes the before/after
report of the change once its window has ended.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.settings import Settings

if TYPE_CHECKING:
    from app.rollout.records import ModelChange, RolloutStatus

LISTED = 5


def add_rollout_command(sub: Any) -> None:
    """Add ``rollout`` to the ``recserve`` sub-command set ``sub``."""
    rollout = sub.add_parser(
        "rollout", help="the guarded rollout of new models: status, promote, roll back"
    )
    actions = rollout.add_subparsers(required=True, metavar="ACTION")
    status = actions.add_parser(
        "status", help="champion, challenger, the test's latest look, recent model changes"
    )
    status.set_defaults(handler=_status)
    promote = actions.add_parser(
        "promote", help="make the challenger the champion now, whatever the test says"
    )
    promote.set_defaults(handler=_promote)
    rollback = actions.add_parser(
        "rollback", help="stop serving the challenger now; the champion serves everyone"
    )
    rollback.set_defaults(handler=_rollback)


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from app.artifacts import challenger_version, current_version
    from app.rollout.store import RolloutStoreUnavailable, open_rollout_store

    store = open_rollout_store(settings)
    root = settings.model_root
    print(f"champion:   {current_version(root) or '-'}")
    print(f"challenger: {challenger_version(root) or '-'}")
    print(f"rollout of new builds: {'on' if settings.rollout.enabled else 'off'}")
    try:
        rollouts, changes = store.rollouts(LISTED), store.changes(LISTED)
    except RolloutStoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for rollout in rollouts:
        look = rollout.last_look.get("reason", "no look yet")
        decided = f" by the {rollout.decided_by}: {rollout.reason}" if rollout.decided_by else ""
        print(f"rollout {rollout.challenger} vs {rollout.champion}: {rollout.status}{decided}")
        if rollout.status == "running":
            print(f"  latest look: {look}")
    for change in changes:
        when = datetime.fromtimestamp(change.at, UTC).isoformat(timespec="seconds")
        report = "report written" if change.report else "report pending"
        print(
            f"change {change.change_id}: {change.kind} {change.from_version or '-'} -> "
            f"{change.to_version} at {when} ({report})"
        )
    return 0


def _promote(args: argparse.Namespace, settings: Settings) -> int:
    return _decide(settings, "promoted")


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    return _decide(settings, "rolled_back")


def _decide(settings: Settings, status: RolloutStatus) -> int:
    from app.artifacts import challenger_version, current_version
    from app.batch.lock import BatchBusy, batch_lock
    from app.rollout.store import RolloutStoreUnavailable

    root = settings.model_root
    challenger, champion = challenger_version(root), current_version(root)
    if challenger is None or champion is None:
        print("error: no challenger is being rolled out (no CHALLENGER pointer)", file=sys.stderr)
        return 2
    try:
        with batch_lock(settings.rollout_dir, f"recserve rollout ({status})"):
            change = asyncio.run(_operator_decision(settings, challenger, champion, status))
    except BatchBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except RolloutStoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if change is None:
        print("error: the rollout was decided meanwhile; see `recserve rollout status`")
        return 1
    print(f"{change.kind}: {change.from_version} -> {change.to_version} serves every user")
    return 0


async def _operator_decision(
    settings: Settings, challenger: str, champion: str, status: RolloutStatus
) -> ModelChange | None:
    """Record (if the job has not yet) and decide the rollout of ``challenger``; the change."""
    from app.privacy.pseudonym import Pseudonymizer
    from app.rollout.actions import RolloutContext, decide, start_rollout
    from app.rollout.store import open_rollout_store
    from app.serving.experiments.rollout import rollout_id
    from app.webhooks.config import load_endpoints
    from app.webhooks.outbox import open_outbox
    from app.webhooks.publisher import WebhookPublisher

    outbox = open_outbox(settings)
    try:
        publisher = WebhookPublisher(
            outbox, load_endpoints(settings.webhooks), Pseudonymizer.from_settings(settings)
        )
        context = RolloutContext(
            settings, open_rollout_store(settings), publisher.notify_model_change
        )
        rollout = await start_rollout(context, rollout_id(challenger), challenger, champion)
        reason = f"`recserve rollout {'promote' if status == 'promoted' else 'rollback'}`"
        return await decide(context, rollout, status, decided_by="operator", reason=reason)
    finally:
        await outbox.close()
