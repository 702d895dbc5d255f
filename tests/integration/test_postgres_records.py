"""The app with PostgreSQL as its database of record: the schema is migrated at start-up, and
consent, events, exposures, webhook dead letters, availability, feedback and erasure all land in
(and are erased from) PostgreSQL, with no embedded file made for them under the home."""

from __future__ import annotations

from pathlib import Path

import psycopg
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.api.main import create_app
from app.privacy.pseudonym import Pseudonymizer
from app.settings import DatabaseSettings, Settings
from tests.conftest import POSTGRES_MARKS, TEST_DATABASE_URL
from tests.integration.conftest import users_with_history
from tests.privacy.helpers import (
    event,
    exposures_and_dead_letters,
    logged_events,
    served_and_clicked,
    wait_for,
    with_experiment_and_crm,
)

pytestmark = POSTGRES_MARKS


def rows(schema: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(TEST_DATABASE_URL, options=f"-c search_path={schema}") as connection:
        return connection.execute(query, params).fetchall()


def file_state(path: Path) -> tuple[int, int] | None:
    """Size and modification time, or None for a missing file."""
    if not path.exists():
        return None
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def test_records_of_truth_live_in_postgresql(
    home: Settings, fresh_postgres_schema: str, tmp_path: Path
) -> None:
    schema = fresh_postgres_schema
    settings = with_experiment_and_crm(
        home.model_copy(
            update={
                "database_url": SecretStr(TEST_DATABASE_URL),
                "database": DatabaseSettings(schema_name=schema),
            }
        ),
        tmp_path,
    )
    refusing, erased, bystander = users_with_history(settings)[:3]
    pseudonyms = Pseudonymizer.from_settings(settings)
    embedded = [
        settings.events_dir / "events.db",
        settings.privacy_dir / "consent.db",
        settings.experiments_dir / "exposures.db",
        settings.webhooks_dir / "outbox.db",
        settings.privacy_dir / "erased_users.tsv",
        settings.privacy_dir / "feedback.db",
        settings.availability_db,
    ]
    # The home is shared with other tests, which may have made these files: what counts is
    # that this app neither creates nor changes any of them.
    before = [file_state(path) for path in embedded]
    with TestClient(create_app(settings)) as client:
        consent = client.put(f"/users/{refusing}/consent", json={"tracking": False})
        assert consent.status_code == 200
        posted = client.post(
            "/events",
            json={"events": [event(erased, "sku-000001"), event(bystander, "sku-000002")]},
        )
        assert posted.json()["accepted_count"] == 2
        for user in (erased, bystander):
            served_and_clicked(client, user)
        wait_for(
            lambda: all(
                exposures_and_dead_letters(settings, u) == (1, 1) for u in (erased, bystander)
            )
        )
        item = client.get("/recommend", params={"user_id": bystander}).json()["items"][0]["item_id"]
        assert client.put(f"/items/{item}/availability", json={"hidden": True}).status_code == 200
        for user in (erased, bystander):
            said = {"user_id": user, "kind": "not_interested", "category": "books"}
            assert client.post("/feedback", json=said).status_code == 200

        assert client.delete(f"/users/{erased}").status_code == 200
        export = client.get(f"/users/{erased}/export").json()

    assert rows(schema, "SELECT key, choices FROM consent") == [
        (pseudonyms.of(refusing), {"tracking": False})
    ]
    assert rows(schema, "SELECT item_id, hidden FROM availability_overrides") == [(item, True)]
    logged_users = {e.user_id for e in logged_events(settings)}
    assert bystander in logged_users
    assert erased not in logged_users
    assert rows(schema, "SELECT count(*) FROM events WHERE user_id = %s", erased) == [(0,)]
    assert exposures_and_dead_letters(settings, erased) == (0, 0)
    assert exposures_and_dead_letters(settings, bystander) == (1, 1)
    assert rows(schema, "SELECT pseudonym FROM erasure_tombstones") == [(pseudonyms.of(erased),)]
    assert rows(schema, "SELECT user_key, target_id FROM feedback") == [
        (pseudonyms.of(bystander), "books")
    ]
    assert export["erased_at"] is not None
    # Nothing of the records went to the embedded files.
    assert [file_state(path) for path in embedded] == before
