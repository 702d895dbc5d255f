"""API-key access control, applied per router as a FastAPI dependency.

Policy (``AuthSettings``): keys are required as soon as any key is configured, or when
``enabled`` is true (then a missing key list refuses to start). With no key configured and
``enabled`` unset, every route is open and start-up logs a warning: that is the local
development default; the production image sets ``RECSERVE_AUTH__ENABLED=true``.

A request without a key, or with an unknown one, is 401 with ``WWW-Authenticate``; a known
key lacking the route's scope is 403. The key is read from ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, params
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.api.api_keys import ApiKey, AuthConfigError, KeyRing, load_key_specs
from app.api.user_tokens import USER_TOKEN_HEADER, verify_user_token
from app.settings import ApiScope, AuthSettings

log = logging.getLogger(__name__)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="recserve"'}
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The API key in an `X-API-Key` header."
)


class Access(StrEnum):
    """Groups of routes; each needs one scope, or none when configured open."""

    RECOMMEND = "recommend"
    EVENTS = "events"
    ADMIN = "admin"
    METRICS = "metrics"
    DOCS = "docs"


class Authenticator:
    """Decides, per request, whether the presented key may use a group of routes."""

    def __init__(self, keys: KeyRing | None, auth: AuthSettings) -> None:
        self._keys = keys
        self._required: dict[Access, ApiScope | None] = {
            Access.RECOMMEND: None if auth.open_recommend else "recommend",
            Access.EVENTS: "events",
            Access.ADMIN: "admin",
            Access.METRICS: None if auth.open_metrics else "admin",
            Access.DOCS: None if auth.open_docs else "admin",
        }
        self._user_token_secret = (
            auth.user_token_secret.get_secret_value() if auth.user_token_secret else None
        )

    def authorize(self, access: Access, presented: str | None) -> ApiKey | None:
        """The key's holder, or None on an open route; raises 401 or 403."""
        if self._keys is None:
            return None
        scope = self._required[access]
        if scope is None:
            return None
        if not presented:
            raise HTTPException(401, "an API key is required", headers=_CHALLENGE)
        holder = self._keys.identify(presented)
        if holder is None:
            raise HTTPException(401, "unknown API key", headers=_CHALLENGE)
        if scope not in holder.scopes:
            raise HTTPException(403, f"API key {holder.name!r} lacks the {scope!r} scope")
        return holder

    def requires_key(self, access: Access) -> bool:
        """Whether ``access`` asks for a key at all (it does not when access is open)."""
        return self._keys is not None and self._required[access] is not None

    def allows(self, access: Access, presented: str | None) -> bool:
        """Whether ``authorize`` lets the key through (no exception, no holder)."""
        try:
            self.authorize(access, presented)
        except HTTPException:
            return False
        return True

    def may_read_profile(self, request: Request, presented: str | None, user_id: str) -> bool:
        """Whether the caller is entitled to ``user_id``'s history and attributes: every
        caller when access is open, else an ``admin`` key or a valid user token for that user.
        A ``recommend`` key alone is not: a browser frontend's key is public."""
        if self._keys is None:
            return True
        holder = self._keys.identify(presented) if presented else None
        if holder is not None and "admin" in holder.scopes:
            return True
        token = request.headers.get(USER_TOKEN_HEADER)
        return bool(
            token
            and self._user_token_secret
            and verify_user_token(self._user_token_secret, token, user_id)
        )


async def may_read_profile(request: Request, user_id: str) -> bool:
    """Whether this request may see ``user_id``'s profile data (``Authenticator``)."""
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.may_read_profile(request, await presented_key(request), user_id)


async def presented_key(request: Request) -> str | None:
    """The API key a request presents, read exactly as the route dependency reads it."""
    bearer = await _bearer(request)
    return bearer.credentials if bearer else await _api_key_header(request)


def load_key_ring(auth: AuthSettings) -> KeyRing | None:
    """The keys to enforce, or None when access is open; raises ``AuthConfigError`` on an
    unusable set-up (the CLI calls this before starting any worker)."""
    specs = load_key_specs(auth)
    if auth.enabled is False or (auth.enabled is None and not specs):
        return None
    if not specs:
        raise AuthConfigError(
            "RECSERVE_AUTH__ENABLED is true but no API key is configured: set "
            "RECSERVE_AUTH__KEYS or RECSERVE_AUTH__KEYS_FILE"
        )
    return KeyRing(specs)


def build_authenticator(auth: AuthSettings) -> Authenticator:
    """The authenticator for ``auth``; raises ``AuthConfigError`` on an unusable set-up."""
    keys = load_key_ring(auth)
    if keys is None:
        log.warning(
            "AUTHENTICATION IS DISABLED: every route, including POST /events and /admin, is "
            "open to anyone who can reach this port. Configure RECSERVE_AUTH__KEYS or "
            "RECSERVE_AUTH__KEYS_FILE (and RECSERVE_AUTH__ENABLED=true) for production."
        )
    else:
        log.info("API keys required: %d key(s) loaded", len(keys))
    return Authenticator(keys, auth)


def _requires(access: Access) -> params.Depends:
    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        api_key: Annotated[str | None, Security(_api_key_header)],
    ) -> ApiKey | None:
        # async on purpose: a sync dependency would run in a worker thread (see deps.py).
        authenticator: Authenticator = request.app.state.authenticator
        return authenticator.authorize(access, bearer.credentials if bearer else api_key)

    return Depends(dependency)


RECOMMEND_ACCESS = _requires(Access.RECOMMEND)
EVENTS_ACCESS = _requires(Access.EVENTS)
ADMIN_ACCESS = _requires(Access.ADMIN)
METRICS_ACCESS = _requires(Access.METRICS)
DOCS_ACCESS = _requires(Access.DOCS)
