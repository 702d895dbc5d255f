"""The checks a build must pass before anything it made is published.

Each check compares the freshly ingested data with the data version in use; a failed check
raises ``BuildRefused``, whose message says what failed and what to do.
"""

from __future__ import annotations

from app.data.report import IngestReport
from app.data.versions import BuildRecord
from app.settings import BuildGateSettings

INTERACTIONS = "interactions"


class BuildRefused(Exception):
    """A build that must not be published; the last good data and model stay in use."""


class NoUsersToSegment(BuildRefused):
    """The behaviour table has no user: segmenting would publish k=0."""


def check_ingest(
    report: IngestReport,
    previous: BuildRecord | None,
    gates: BuildGateSettings,
    quarantine_hint: str,
) -> list[str]:
    """Raise ``BuildRefused`` when ``report`` must not replace ``previous``; return warnings
    (schema drift under ``schema_drift = "warn"``)."""
    interactions = report.tables[INTERACTIONS]
    if interactions.accepted == 0:
        raise BuildRefused(
            f"no interactions accepted ({interactions.rows_read} read, "
            f"{interactions.quarantined} quarantined{quarantine_hint}); fix the source and "
            "build again"
        )
    read = sum(table.rows_read for table in report.tables.values())
    quarantined_percent = 100.0 * report.quarantined / read if read else 0.0
    if quarantined_percent > gates.max_quarantined_percent:
        raise BuildRefused(
            f"{quarantined_percent:.1f}% of the input rows were quarantined ({report.quarantined} "
            f"of {read}{quarantine_hint}), more than RECSERVE_BUILD_GATES__MAX_QUARANTINED_PERCENT"
            f"={gates.max_quarantined_percent:g}; fix the source, or raise the limit if the data "
            "is right"
        )
    if previous is None:
        return []
    before = previous.rows.get(INTERACTIONS, 0)
    drop_percent = 100.0 * (before - interactions.accepted) / before if before else 0.0
    if drop_percent > gates.max_interaction_drop_percent:
        raise BuildRefused(
            f"interactions dropped by {drop_percent:.1f}% ({before} in data version "
            f"{previous.data_version}, {interactions.accepted} now), more than "
            f"RECSERVE_BUILD_GATES__MAX_INTERACTION_DROP_PERCENT="
            f"{gates.max_interaction_drop_percent:g}; check the source is complete, or raise the "
            "limit if the shrink is real"
        )
    drift = schema_drift(previous.source_columns, report.source_columns)
    if drift and gates.schema_drift == "refuse":
        raise BuildRefused(
            f"input schema changed since data version {previous.data_version}: "
            f"{'; '.join(drift)}; restore the column names, or set "
            "RECSERVE_BUILD_GATES__SCHEMA_DRIFT=warn to accept the new schema"
        )
    return [f"input schema changed: {change}" for change in drift]


def schema_drift(
    before: dict[str, list[str]], after: dict[str, tuple[str, ...]] | dict[str, list[str]]
) -> list[str]:
    """Per table present in both, the columns added and gone, as sentences; tables that
    appear or disappear are drift too."""
    changes: list[str] = []
    if not before:
        return changes  # a data version recorded without columns: nothing to compare
    for table in sorted(set(before) | set(after)):
        if table not in after:
            changes.append(f"table {table} is gone")
            continue
        if table not in before:
            changes.append(f"table {table} is new")
            continue
        gone = [c for c in before[table] if c not in after[table]]
        added = [c for c in after[table] if c not in before[table]]
        if gone:
            changes.append(f"{table}: column(s) {', '.join(gone)} missing")
        if added:
            changes.append(f"{table}: new column(s) {', '.join(added)}")
    return changes
