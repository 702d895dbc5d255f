"""The erasure list: pseudonyms of erased users, which every later ``build`` drops.

It holds no raw id: the build recognises a user by pseudonymising the ids it reads with the
same key. Two backends: ``ErasureList``, a file under the home (one line per erasure,
``<pseudonym>\\t<erased_at>``, appended with ``O_APPEND`` and fsynced: a line this short is
written whole even with several workers appending), and ``PostgresTombstones``
(``tombstones_postgres``) in the database of record when ``RECSERVE_DATABASE_URL`` is set, so an
erasure made on any host reaches the build wherever it runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from app.settings import Settings

FILE_NAME = "erased_users.tsv"


class TombstonesUnavailable(OSError):
    """The erasure list cannot be read or written (an ``OSError``, like the file's own)."""


class Tombstones(Protocol):
    """Durable record of erasures, by pseudonym. Blocking: call off the event loop."""

    def add(self, pseudonym: str, erased_at: float) -> None:
        """Record one erasure durably (a repeat records the later time)."""
        ...

    def erased(self) -> dict[str, float]:
        """``{pseudonym: erased_at}`` of every erasure (the latest when repeated)."""
        ...

    def erased_at(self, pseudonym: str) -> float | None:
        """When ``pseudonym`` was last erased, None when never."""
        ...


class ErasureList:
    """The list under ``directory`` (created on the first erasure)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME

    def add(self, pseudonym: str, erased_at: float) -> None:
        """Record one erasure durably."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = f"{pseudonym}\t{erased_at:.3f}\n".encode()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def erased(self) -> dict[str, float]:
        """``{pseudonym: erased_at}`` of every erasure (the latest when repeated)."""
        if not self.path.is_file():
            return {}
        erased: dict[str, float] = {}
        for line in self.path.read_text().splitlines():
            pseudonym, _, at = line.partition("\t")
            if pseudonym and at:
                erased[pseudonym] = float(at)
        return erased

    def erased_at(self, pseudonym: str) -> float | None:
        return self.erased().get(pseudonym)


def open_tombstones(settings: Settings) -> Tombstones:
    """PostgreSQL when ``settings.database_url`` is set, else the file under the home."""
    if settings.database_url is None:
        return ErasureList(settings.privacy_dir)
    # Imported here: psycopg is the optional extra `postgres`.
    from app.privacy.tombstones_postgres import PostgresTombstones
    from app.storage.postgres import short_connections_from_settings

    return PostgresTombstones(short_connections_from_settings(settings))
