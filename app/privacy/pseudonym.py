"""Keyed hashes standing for user ids wherever the raw id is not needed.

HMAC-SHA256 with a secret from settings, so a pseudonym cannot be reversed or recomputed from
a guessed id without the key, while the same id always maps to the same pseudonym (the event
log, the consent store and the erasure list can be looked up by it).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from functools import lru_cache

from app.settings import Settings

log = logging.getLogger(__name__)

# Only for development homes: anyone can recompute pseudonyms made with it.
DEVELOPMENT_KEY = b"recserve-development-pseudonym-key"
PSEUDONYM_HEX_CHARS = 32  # 128 bits: collisions are out of reach for any user count


# Pseudonyms remembered per worker: the request path asks for one per request (consent) and
# an HMAC costs far more there than in a tight loop: 30-38 µs of an answer in
# ``loadtests.engine_loop`` (with and without the memo, alternated), against 3 µs alone.
MEMO_ENTRIES = 16_384


class Pseudonymizer:
    """Maps user ids to pseudonyms with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._memo = lru_cache(maxsize=MEMO_ENTRIES)(self._digest)

    @classmethod
    def from_settings(cls, settings: Settings) -> Pseudonymizer:
        """The configured key, or the development key with a warning in the log."""
        secret = settings.privacy.pseudonym_key
        if secret is None:
            log.warning(
                "RECSERVE_PRIVACY__PSEUDONYM_KEY is not set: user ids are pseudonymised with "
                "the public development key, which anyone can reverse by guessing ids. Set a "
                "random secret of 16+ characters before storing real users' data."
            )
            return cls(DEVELOPMENT_KEY)
        return cls(secret.get_secret_value().encode())

    def of(self, user_id: str) -> str:
        """The pseudonym of ``user_id``: 32 hex characters."""
        return self._memo(user_id)

    def _digest(self, user_id: str) -> str:
        digest = hmac.digest(self._key, user_id.encode(), hashlib.sha256)
        return digest.hex()[:PSEUDONYM_HEX_CHARS]
