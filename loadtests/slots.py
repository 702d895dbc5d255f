"""The slot ids of a content slots file, for load generators (no model or catalogue needed)."""

from __future__ import annotations

import tomllib
from pathlib import Path


def slot_ids(path: Path) -> list[str]:
    """The slot ids ``path`` declares, in page order; ``SystemExit`` naming the file when it
    cannot be read or declares none (a load test without them would only measure 404s)."""
    try:
        slots = tomllib.loads(path.read_text(encoding="utf-8")).get("slots", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SystemExit(f"content slots file {path}: {exc}") from exc
    ids = [str(slot["id"]) for slot in slots if isinstance(slot, dict) and "id" in slot]
    if not ids:
        raise SystemExit(f"content slots file {path} declares no [[slots]] with an id")
    return ids
