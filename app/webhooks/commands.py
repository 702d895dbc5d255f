"""``recserve webhooks dead-letters|replay``: the operator's view of the dead-letter store.

Works on the configured outbox (SQLite under the home, or Redis) with or without a server
running; the servers' delivery workers pick replayed deliveries up on their next poll.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from app.settings import Settings
from app.webhooks.types import OutboxUnavailable

if TYPE_CHECKING:
    from app.webhooks.outbox import Outbox

T = TypeVar("T")


def add_webhooks_command(sub: Any) -> None:
    """Add ``webhooks`` to the ``recserve`` sub-command set ``sub``."""
    webhooks = sub.add_parser("webhooks", help="list or replay dead-lettered CRM webhooks")
    actions = webhooks.add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser("dead-letters", help="list parked deliveries, oldest first")
    listing.add_argument(
        "--limit", type=int, default=100, help="list at most this many (default 100)"
    )
    listing.set_defaults(handler=_list)
    replay = actions.add_parser("replay", help="move dead letters back to the outbox")
    replay.add_argument(
        "--id", dest="ids", action="append", default=None, help="a delivery id (repeatable)"
    )
    replay.add_argument("--all", action="store_true", help="replay every dead letter")
    replay.set_defaults(handler=_replay)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    parked = _with_outbox(settings, lambda outbox: outbox.dead_letters(args.limit))
    if parked is None:
        return 1
    for letter in parked:
        delivery = letter.delivery
        dead_at = datetime.fromtimestamp(letter.dead_at, UTC).isoformat(timespec="seconds")
        print(
            f"{delivery.delivery_id}  {delivery.endpoint}  {delivery.kind}  "
            f"attempts={delivery.attempts}  dead_at={dead_at}  last_error={delivery.last_error}"
        )
    print(f"{len(parked)} dead letter(s)")
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    if args.all == bool(args.ids):
        print("error: give --id (one or more) or --all", file=sys.stderr)
        return 2
    replayed = _with_outbox(settings, lambda outbox: outbox.replay(None if args.all else args.ids))
    if replayed is None:
        return 1
    print(f"replayed {replayed} dead letter(s)")
    return 0


def _with_outbox(settings: Settings, work: Callable[[Outbox], Awaitable[T]]) -> T | None:
    """``work``'s result, or None after printing why the outbox is unavailable."""
    from app.webhooks.outbox import run_with_outbox  # Redis client import: only when run

    try:
        return run_with_outbox(settings, work)
    except OutboxUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
