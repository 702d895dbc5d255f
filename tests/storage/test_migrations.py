"""``recserve db upgrade`` makes the records' schema, and replicas upgrading at once agree."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from app.cli import main
from app.storage.postgres.migrate import MIGRATIONS, current
from tests.conftest import POSTGRES_MARKS, TEST_DATABASE_URL

pytestmark = POSTGRES_MARKS


def newest_revision() -> str:
    return max(path.name.split("_")[0] for path in (MIGRATIONS / "versions").glob("[0-9]*.py"))


def test_db_upgrade_creates_the_schema_and_a_second_run_changes_nothing(
    fresh_postgres_schema: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECSERVE_DATABASE_URL", TEST_DATABASE_URL)
    monkeypatch.setenv("RECSERVE_DATABASE__SCHEMA_NAME", fresh_postgres_schema)
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"schema {fresh_postgres_schema} at revision {newest_revision()}"] * 2
    with psycopg.connect(TEST_DATABASE_URL) as connection:
        kind = connection.execute(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = 'events'",
            (fresh_postgres_schema,),
        ).fetchone()
    assert kind == ("p",)  # the event log is a partitioned table


def test_db_upgrade_without_a_database_url_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RECSERVE_DATABASE_URL", raising=False)
    assert main(["db", "upgrade"]) == 2
    assert "RECSERVE_DATABASE_URL is not set" in capsys.readouterr().err


def test_replicas_upgrading_together_migrate_once(fresh_postgres_schema: str) -> None:
    env = {
        **os.environ,
        "RECSERVE_DATABASE_URL": TEST_DATABASE_URL,
        "RECSERVE_DATABASE__SCHEMA_NAME": fresh_postgres_schema,
    }
    command = [
        sys.executable,
        "-c",
        "from app.cli import main; raise SystemExit(main(['db', 'upgrade']))",
    ]
    replicas = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE) for _ in range(3)]
    failures = [p.stderr.read() for p in replicas if p.wait(timeout=120) != 0 and p.stderr]
    assert failures == []
    assert current(TEST_DATABASE_URL, fresh_postgres_schema) == newest_revision()
