"""API keys, loaded once at start-up into a map from SHA-256 digest to key holder.

Checking a request then costs one SHA-256 of the presented key and one dict lookup, whatever
the number of keys. Keys may be configured as plain secrets or as their SHA-256, so a keys file
or an environment dump need not hold a usable secret.
"""

from __future__ import annotations

import hashlib
import hmac
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from app.settings import ApiKeySpec, ApiScope, AuthSettings


class AuthConfigError(ValueError):
    """The key configuration cannot be used (unreadable file, bad entry, duplicate key)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """Who holds a key and what it may do; never the key itself."""

    name: str
    scopes: frozenset[ApiScope]


class KeyRing:
    """Known keys by the SHA-256 digest of the secret."""

    def __init__(self, specs: Iterable[ApiKeySpec]) -> None:
        self._by_digest: dict[bytes, tuple[bytes, ApiKey]] = {}
        for spec in specs:
            digest = _digest_of(spec)
            if digest in self._by_digest:
                other = self._by_digest[digest][1].name
                raise AuthConfigError(f"API keys {other!r} and {spec.name!r} are the same key")
            self._by_digest[digest] = (digest, ApiKey(spec.name, frozenset(spec.scopes)))

    def __len__(self) -> int:
        return len(self._by_digest)

    def identify(self, presented: str) -> ApiKey | None:
        """The holder of ``presented``, or None for an unknown key."""
        digest = hashlib.sha256(presented.encode()).digest()
        # The lookup compares digests, not secrets, so its timing says nothing usable about
        # the key; the final comparison is constant-time all the same.
        entry = self._by_digest.get(digest)
        if entry is None or not hmac.compare_digest(entry[0], digest):
            return None
        return entry[1]


def load_key_specs(auth: AuthSettings) -> list[ApiKeySpec]:
    """Keys from the settings plus those in ``auth.keys_file``."""
    specs = list(auth.keys)
    if auth.keys_file is not None:
        specs.extend(_read_keys_file(auth.keys_file))
    return specs


def _read_keys_file(path: Path) -> list[ApiKeySpec]:
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AuthConfigError(f"keys file {path}: {exc}") from exc
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise AuthConfigError(f"keys file {path}: expected [[keys]] tables")
    specs = []
    for number, entry in enumerate(entries, start=1):
        try:
            specs.append(ApiKeySpec.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            raise AuthConfigError(f"keys file {path}, key #{number}: {problems}") from None
    return specs


def _digest_of(spec: ApiKeySpec) -> bytes:
    if spec.key is not None:
        return hashlib.sha256(spec.key.get_secret_value().encode()).digest()
    assert spec.sha256 is not None  # ApiKeySpec guarantees exactly one of the two
    return bytes.fromhex(spec.sha256)
