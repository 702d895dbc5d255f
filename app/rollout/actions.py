"""Starting, promoting and rolling back a challenger: what the rollout job and ``recserve
rollout`` both do, in the same order.

A decision first moves the rollout out of ``running`` in the record store, which succeeds for
one caller only; then the pointers change, the model change is recorded and the webhook is
enqueued. Everything after the store's move is idempotent (``apply``), so a process that dies
half-way leaves a decided rollout whose pointers the next look of the job puts right.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.artifacts import challenger_version, clear_challenger, point_current
from app.observability import metrics
from app.rollout.records import DecidedBy, ModelChange, Rollout, RolloutStatus
from app.rollout.store import RolloutStore
from app.settings import Settings, WebhookEventKind
from app.webhooks.types import OutboxUnavailable

log = logging.getLogger(__name__)

# Enqueues a ``model.*`` webhook: kind, the id of what it is about, its data.
Notify = Callable[[WebhookEventKind, str, dict[str, Any]], Awaitable[int]]
_WEBHOOK_OF: dict[RolloutStatus, WebhookEventKind] = {
    "running": "model.challenger_started",
    "promoted": "model.promoted",
    "rolled_back": "model.rolled_back",
}


@dataclass
class RolloutContext:
    settings: Settings
    store: RolloutStore
    notify: Notify
    clock: Callable[[], float] = field(default=time.time)


async def start_rollout(
    context: RolloutContext, rollout_id: str, challenger: str, champion: str
) -> Rollout:
    """The rollout of ``challenger``, recorded (and announced) when it is new."""
    rollout = Rollout(
        rollout_id=rollout_id,
        challenger=challenger,
        champion=champion,
        traffic_share=context.settings.rollout.traffic_share,
        started_at=context.clock(),
        status="running",
    )
    store = context.store
    if await asyncio.to_thread(store.start_rollout, rollout):
        log.info("rollout %s: %s challenges %s", rollout_id, challenger, champion)
        await _announce(context, rollout_id, rollout)
        return rollout
    recorded = await asyncio.to_thread(store.rollout, rollout_id)
    return recorded if recorded is not None else rollout


async def decide(
    context: RolloutContext,
    rollout: Rollout,
    status: RolloutStatus,
    *,
    decided_by: DecidedBy,
    reason: str,
) -> ModelChange | None:
    """Promote or roll back a running rollout; None when someone else decided it first."""
    at = context.clock()
    store = context.store
    won = await asyncio.to_thread(
        store.finish_rollout,
        rollout.rollout_id,
        status,
        at=at,
        decided_by=decided_by,
        reason=reason,
    )
    if not won:
        return None
    decided = rollout.model_copy(
        update={"status": status, "decided_at": at, "decided_by": decided_by, "reason": reason}
    )
    metrics.ROLLOUT_DECISIONS.labels(status, decided_by).inc()
    log.warning("rollout %s %s by the %s: %s", rollout.rollout_id, status, decided_by, reason)
    return await apply(context, decided)


async def apply(context: RolloutContext, rollout: Rollout) -> ModelChange | None:
    """Make the pointers, the change record and the webhook follow a decided rollout (again:
    every step is idempotent)."""
    if rollout.status == "running" or rollout.decided_at is None:
        return None
    root = context.settings.model_root
    promoted = rollout.status == "promoted"
    if promoted:
        point_current(root, rollout.challenger)
    if challenger_version(root) == rollout.challenger:
        clear_challenger(root)
    change = ModelChange(
        change_id=f"{'promotion' if promoted else 'rollback'}-{rollout.challenger}",
        kind="promotion" if promoted else "rollback",
        at=rollout.decided_at,
        from_version=rollout.champion if promoted else rollout.challenger,
        to_version=rollout.challenger if promoted else rollout.champion,
        reason=rollout.reason,
    )
    await asyncio.to_thread(context.store.add_change, change)
    await _announce(context, change.change_id, rollout)
    return change


async def _announce(context: RolloutContext, source_id: str, rollout: Rollout) -> None:
    """The rollout's webhook; a failing outbox is logged and counted, the decision stands."""
    data = rollout.model_dump(exclude={"last_look"}) | {"look": rollout.last_look}
    try:
        await context.notify(_WEBHOOK_OF[rollout.status], source_id, data)
    except OutboxUnavailable as exc:
        metrics.WEBHOOK_ENQUEUE_FAILURES.inc()
        log.error("rollout webhook %s not enqueued: %s", source_id, exc)
