"""Webhook endpoints from settings plus an optional TOML file, validated once at start-up."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from app.settings import WebhookEndpointSpec, WebhookSettings


class WebhookConfigError(ValueError):
    """The webhook configuration cannot be used; the message names the file, entry and field."""


def load_endpoints(config: WebhookSettings) -> list[WebhookEndpointSpec]:
    """The endpoints of ``config.endpoints`` then of ``config.endpoints_file``. Names must be
    unique and every timeout shorter than the lease, or a slow attempt could be sent twice."""
    endpoints = list(config.endpoints)
    if config.endpoints_file is not None:
        endpoints += _read_endpoints_file(config.endpoints_file)
    seen: set[str] = set()
    for endpoint in endpoints:
        if endpoint.name in seen:
            raise WebhookConfigError(f"webhook endpoint name {endpoint.name!r} is used twice")
        seen.add(endpoint.name)
        if endpoint.timeout_seconds >= config.lease_seconds:
            raise WebhookConfigError(
                f"webhook endpoint {endpoint.name!r}: timeout_seconds "
                f"({endpoint.timeout_seconds}) must be below webhooks.lease_seconds "
                f"({config.lease_seconds})"
            )
    return endpoints


def _read_endpoints_file(path: Path) -> list[WebhookEndpointSpec]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise WebhookConfigError(f"webhooks file {path}: {exc}") from exc
    tables = document.get("endpoints")
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise WebhookConfigError(f"webhooks file {path}: expected [[endpoints]] tables")
    endpoints: list[WebhookEndpointSpec] = []
    for number, table in enumerate(tables, start=1):
        try:
            endpoints.append(WebhookEndpointSpec.model_validate(table))
        except ValidationError as exc:
            # Field and message only: pydantic's input echo would print the secret.
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            )
            raise WebhookConfigError(
                f"webhooks file {path}, endpoint #{number}: {problems}"
            ) from None
    return endpoints
