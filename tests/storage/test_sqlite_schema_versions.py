"""Every embedded SQLite store upgrades a file written before schema versions, keeping its rows,
and refuses a file of a later release. Each store writes through its own API; setting the
version back to 0 then leaves exactly what a release without versions wrote (the same DDL)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.events import log_sqlite
from app.events.log_sqlite import SqliteEventLog
from app.events.types import Event, EventLogUnavailable
from app.experiments import store_sqlite
from app.experiments.attribution import Exposure, ExposureStoreUnavailable
from app.experiments.store_sqlite import SqliteExposureStore
from app.feedback import store_sqlite as feedback_sqlite
from app.feedback.store_sqlite import SqliteFeedbackStore
from app.feedback.types import Feedback, FeedbackKind, FeedbackTarget, FeedbackUnavailable
from app.privacy import consent_sqlite
from app.privacy.consent import ConsentUnavailable
from app.privacy.consent_sqlite import SqliteConsentStore
from app.serving.catalogue import availability
from app.serving.catalogue.availability import AvailabilityStoreError, SqliteAvailabilityStore
from app.serving.catalogue.items import Availability
from app.webhooks import outbox_sqlite
from app.webhooks.outbox_sqlite import SqliteOutbox
from app.webhooks.types import Delivery, OutboxUnavailable

FEEDBACK = Feedback("user-key", FeedbackKind.NOT_INTERESTED, FeedbackTarget.ITEM, "i1", 1.0)
EXPOSURE = Exposure("rec-1", "ab-1", "control", "user-key", {"i1": 1}, datetime.now(UTC))


@dataclass(frozen=True)
class StoreCase:
    """How to open one store on a file, write rows through it and read them back."""

    migrations: Sequence[str]
    open: Callable[[Path], Any]
    write: Callable[[Any], Awaitable[object]]
    read: Callable[[Any], Awaitable[object]]
    expected: object
    unavailable: type[Exception]


async def _read_events(log: SqliteEventLog) -> list[str]:
    delivered = await log.read("group", "consumer", count=10, block_ms=0)
    return [event.event.event_id for event in delivered]


async def _read_exposure(store: SqliteExposureStore) -> str | None:
    found = await store.find_exposure("rec-1")
    return None if found is None else found.variant


async def _read_consent(store: SqliteConsentStore) -> dict[str, bool] | None:
    record = await store.get("user-key")
    return None if record is None else record.choices


async def _read_outbox(outbox: SqliteOutbox) -> list[str]:
    return [d.delivery_id for d in await outbox.claim("worker", limit=10, lease_seconds=30)]


CASES = {
    "event log": StoreCase(
        log_sqlite.MIGRATIONS,
        SqliteEventLog,
        lambda log: log.append([Event("e-1", "u1", "i1", "view", 1.0)]),
        _read_events,
        ["e-1"],
        EventLogUnavailable,
    ),
    "exposures": StoreCase(
        store_sqlite.MIGRATIONS,
        SqliteExposureStore,
        lambda store: store.save_exposure(EXPOSURE, timedelta(hours=1)),
        _read_exposure,
        "control",
        ExposureStoreUnavailable,
    ),
    "consent": StoreCase(
        consent_sqlite.MIGRATIONS,
        SqliteConsentStore,
        lambda store: store.record("user-key", {"personalization": False}, 1.0),
        _read_consent,
        {"personalization": False},
        ConsentUnavailable,
    ),
    "webhook outbox": StoreCase(
        outbox_sqlite.MIGRATIONS,
        SqliteOutbox,
        lambda outbox: outbox.enqueue([Delivery("d-1", "crm", "engagement.click", b"{}", 1.0)]),
        _read_outbox,
        ["d-1"],
        OutboxUnavailable,
    ),
    "availability": StoreCase(
        availability.MIGRATIONS,
        SqliteAvailabilityStore,
        lambda store: store.put("i1", Availability(hidden=True, in_stock=None)),
        lambda store: store.changes_since(0),
        (1, {"i1": Availability(hidden=True, in_stock=None)}),
        AvailabilityStoreError,
    ),
    "feedback": StoreCase(
        feedback_sqlite.MIGRATIONS,
        SqliteFeedbackStore,
        lambda store: store.record(FEEDBACK),
        lambda store: store.entries("user-key"),
        [FEEDBACK],
        FeedbackUnavailable,
    ),
}


def _version(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        return int(version)


def _set_version(path: Path, version: int) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {version}")


async def _open_and_read(case: StoreCase, path: Path) -> object:
    store = case.open(path)  # the availability store opens its file here, the others on use
    try:
        return await case.read(store)
    finally:
        await store.close()


@pytest.mark.parametrize("name", CASES)
async def test_a_file_written_before_versions_keeps_its_rows(name: str, tmp_path: Path) -> None:
    case, path = CASES[name], tmp_path / "store.sqlite3"
    store = case.open(path)
    await case.write(store)
    await store.close()
    _set_version(path, 0)

    assert await _open_and_read(case, path) == case.expected
    assert _version(path) == len(case.migrations)


@pytest.mark.parametrize("name", CASES)
async def test_a_file_of_a_later_release_is_refused(name: str, tmp_path: Path) -> None:
    case, path = CASES[name], tmp_path / "store.sqlite3"
    store = case.open(path)
    await case.write(store)
    await store.close()
    _set_version(path, len(case.migrations) + 1)

    with pytest.raises(case.unavailable, match="newer than this release's") as refused:
        await _open_and_read(case, path)
    assert str(path) in str(refused.value)
    assert _version(path) == len(case.migrations) + 1
