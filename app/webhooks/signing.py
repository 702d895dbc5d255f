"""Webhook signatures: ``HMAC-SHA256(secret, f"{timestamp}.{body}")``, hex, in the header
``X-Recserve-Signature: v1=<hex>`` with the Unix timestamp in ``X-Recserve-Timestamp``.

Signing the timestamp with the body lets a receiver refuse replays of an old capture; the
``v1=`` prefix leaves room to rotate the scheme. ``verify`` is what a Python receiver runs.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Recserve-Signature"
TIMESTAMP_HEADER = "X-Recserve-Timestamp"
DELIVERY_HEADER = "X-Recserve-Delivery"
EVENT_HEADER = "X-Recserve-Event"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signed_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Timestamp and signature headers for one attempt."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when ``headers`` (case-insensitive lookups, e.g. a Starlette or httpx mapping, or
    a dict with the exact names) carry a valid signature of ``body`` made within
    ``tolerance_seconds`` of ``now``. Compares in constant time."""
    timestamp_text = headers.get(TIMESTAMP_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if timestamp_text is None or signature is None:
        return False
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
