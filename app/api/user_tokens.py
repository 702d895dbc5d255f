"""User-bound tokens: a shop's backend vouches that the browser belongs to one user.

A browser-facing ``recommend`` key is public (every visitor can read it), so it cannot decide
who may see a user's history or attributes. The shop's backend, which knows who is logged in,
signs the user id with a secret it shares with recserve and hands the token to the browser,
which presents it in ``X-User-Token``. The token is ``<expiry>.<signature>``: the expiry in
Unix seconds, and HMAC-SHA256 over ``recserve-user-token:<expiry>:<user id>`` keyed by
``RECSERVE_AUTH__USER_TOKEN_SECRET``, base64url without padding. The user id is not inside:
the request names it (``user_id``), and a token signed for another user does not verify.
Any language's HMAC library can mint one; ``recserve user-token`` does it from a shell.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

USER_TOKEN_HEADER = "X-User-Token"
_CONTEXT = b"recserve-user-token"
# Bounds what a parser reads from an untrusted header: an expiry of 20 digits and a
# 43-character signature, with room to spare.
_MAX_TOKEN_CHARS = 128


def mint_user_token(secret: str, user_id: str, ttl_seconds: int, now: float | None = None) -> str:
    """A token for ``user_id`` valid for ``ttl_seconds`` from ``now``."""
    expires = int(now if now is not None else time.time()) + ttl_seconds
    return f"{expires}.{_signature(secret, user_id, expires)}"


def verify_user_token(secret: str, token: str, user_id: str, now: float | None = None) -> bool:
    """Whether ``token`` was minted with ``secret`` for ``user_id`` and has not expired."""
    if len(token) > _MAX_TOKEN_CHARS:
        return False
    expiry, _, signature = token.partition(".")
    if not expiry.isascii() or not expiry.isdigit():
        return False
    expires = int(expiry)
    if expires <= (now if now is not None else time.time()):
        return False
    expected = _signature(secret, user_id, expires)
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def _signature(secret: str, user_id: str, expires: int) -> str:
    message = b":".join((_CONTEXT, str(expires).encode(), user_id.encode("utf-8", "replace")))
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
