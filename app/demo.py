"""``recserve demo``: the synthetic shop, built once and served, keeping what users did.

A build takes minutes, so the demo reuses the home's last demo build while its fingerprint
holds: the generated shop's bytes, the settings a build depends on and the recserve version,
and the model ``CURRENT`` names is still the one that build published. Events posted to the
running demo live in the event log and the online profiles, which a reused build keeps as they
are; any rebuild copies the logged events out first and trains on them (``build_with_events``),
so they are never lost and never need posting again (they would be duplicates).
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import socket
from pathlib import Path

import orjson

from app.artifacts import current_version
from app.settings import Settings

FINGERPRINT_FILE = "demo-build.json"
# What a build reads besides the data; the API's host, port and workers, the experiments,
# slots and rules files are read at serve time only.
_BUILD_SETTINGS = ("redis_url", "models_dir", "segment_clusters", "dense_max_items", "feast")


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None when it can (bound the way uvicorn
    binds it, then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc})"
            return (
                f"port {port} on {host} {reason}; pick another with --port N "
                "(or RECSERVE_API__PORT)"
            )
    return None


def build_fingerprint(settings: Settings, source: Path) -> str:
    """A digest of everything a demo build depends on: the source files, the build settings
    and the installed recserve version."""
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(settings.model_dump_json(include=set(_BUILD_SETTINGS)).encode())
    digest.update(importlib.metadata.version("recserve").encode())
    return digest.hexdigest()


def reusable_build(settings: Settings, fingerprint: str) -> str | None:
    """The model version of the home's last demo build when it matches ``fingerprint`` and is
    still the published one; else None (build again)."""
    path = settings.home / FINGERPRINT_FILE
    try:
        recorded = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    version = current_version(settings.model_root)
    if recorded.get("fingerprint") != fingerprint or version != recorded.get("model_version"):
        return None
    return version


def record_build(settings: Settings, fingerprint: str) -> None:
    """Remember the published model as the build of ``fingerprint``."""
    document = {"fingerprint": fingerprint, "model_version": current_version(settings.model_root)}
    (settings.home / FINGERPRINT_FILE).write_bytes(orjson.dumps(document))
