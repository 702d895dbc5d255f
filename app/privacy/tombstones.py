"""The erasure list: pseudonyms of erased users, which every later ``build`` drops.

One line per erasure, ``<pseudonym>\\t<erased_at>``, appended with ``O_APPEND`` and fsynced
(a line this short is written whole even with several workers appending). It holds no raw id:
the build recognises a user by pseudonymising the ids it reads with the same key.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_NAME = "erased_users.tsv"


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
