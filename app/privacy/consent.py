"""Consent per user and purpose: the records, and the durable store's interface.

Stores are keyed by the user's pseudonym and hold only the choices the user made, with a
timestamped history of every change; purposes never chosen fall back to the defaults in
settings (``ConsentPolicy``). Backends: ``consent_sqlite`` (embedded default) and
``consent_redis``; ``tests/privacy/test_consent_contract.py`` is their contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import orjson


class Purpose(StrEnum):
    """What a user's data may be used for."""

    PERSONALIZATION = "personalization"  # read their profile to rank items for them
    TRACKING = "tracking"  # store their events


class ConsentUnavailable(Exception):
    """The consent store cannot answer; callers act as if consent were refused."""


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """The choices a user made (purpose -> granted), as of ``updated_at`` (Unix seconds)."""

    choices: dict[str, bool]
    updated_at: float

    def to_bytes(self) -> bytes:
        return orjson.dumps({"choices": self.choices, "at": self.updated_at})

    @classmethod
    def from_bytes(cls, data: bytes) -> ConsentRecord:
        record = orjson.loads(data)
        return cls(choices=record["choices"], updated_at=record["at"])


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """One ``PUT`` of consent: the purposes it set, and when."""

    changes: dict[str, bool]
    at: float


@dataclass(frozen=True, slots=True)
class ConsentPolicy:
    """The consent of users who never chose, per purpose."""

    defaults: Mapping[Purpose, bool]

    def resolve(self, record: ConsentRecord | None) -> dict[Purpose, bool]:
        """Every purpose: the user's choice where they made one, else the default."""
        choices = record.choices if record is not None else {}
        return {purpose: choices.get(purpose.value, self.defaults[purpose]) for purpose in Purpose}


class ConsentStore(Protocol):
    """Durable consent, keyed by pseudonym. Every method raises ``ConsentUnavailable`` when
    the backend fails."""

    async def get(self, key: str) -> ConsentRecord | None:
        """The user's current choices, or None when they never chose (or were erased)."""
        ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, ConsentRecord | None]:
        """``get`` for several users in one backend round trip (an event batch's users)."""
        ...

    async def record(self, key: str, changes: Mapping[str, bool], at: float) -> ConsentRecord:
        """Merge ``changes`` into the user's choices, append them to the history, and tell every
        worker's cache (when there is one); returns the merged record."""
        ...

    async def history(self, key: str) -> list[ConsentChange]:
        """Every change the user made, oldest first."""
        ...

    async def erase(self, key: str) -> bool:
        """Forget the user's choices and history; True when there was anything."""
        ...

    async def ping(self) -> None:
        """Return when the backend answers."""
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
