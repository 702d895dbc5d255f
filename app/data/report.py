"""What an ingest did: the numbers written to ``summary.json`` and printed by the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class TableSummary:
    """Row counts of one table; ``reasons`` counts quarantined rows by reason."""

    rows_read: int
    accepted: int
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    ignored_columns: tuple[str, ...] = ()
    quarantine_file: str | None = None


@dataclass(frozen=True)
class IngestReport:
    """The outcome of one ingest. ``tables`` is keyed interactions/users/items (those present);
    ``fingerprint`` is the SHA-256 of the written tables, recorded by training."""

    source: str
    data_dir: str
    tables: dict[str, TableSummary]
    distinct_users: int
    distinct_items: int
    users_without_attributes: int
    time_min: int | None
    time_max: int | None
    fingerprint: str
    seconds: float
    notes: tuple[str, ...] = ()
    source_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        """Rows rejected across all tables."""
        return sum(table.quarantined for table in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in ``summary.json``."""
        data = asdict(self)
        data["time_range"] = [_iso(self.time_min), _iso(self.time_max)]
        return data

    def format(self) -> str:
        """A short human-readable summary."""
        lines = [f"Ingested {self.source} -> {self.data_dir} in {self.seconds:.2f} s"]
        for name, table in self.tables.items():
            line = (
                f"  {name}: {table.rows_read} read, {table.accepted} accepted, "
                f"{table.quarantined} quarantined"
            )
            if table.reasons:
                reasons = ", ".join(f"{reason}: {n}" for reason, n in table.reasons.items())
                line += f" ({reasons}) -> {table.quarantine_file}"
            if table.ignored_columns:
                line += f"; ignored columns: {', '.join(table.ignored_columns)}"
            lines.append(line)
        lines.append(
            f"  {self.distinct_users} users and {self.distinct_items} items with interactions; "
            f"{self.users_without_attributes} users without attributes"
        )
        lines.append(f"  time range {_iso(self.time_min)} .. {_iso(self.time_max)}")
        lines.extend(f"  note: {note}" for note in self.notes)
        lines.append(f"  fingerprint {self.fingerprint}")
        return "\n".join(lines)


def _iso(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
