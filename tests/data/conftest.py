"""Shared helpers for the data tests: the hand-written bad fixture and a tiny atomic writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

BADSHOP = Path(__file__).resolve().parents[1] / "fixtures" / "badshop"

AtomicWriter = Callable[..., Path]


@pytest.fixture
def write_atomic(tmp_path: Path) -> AtomicWriter:
    """Write ``tmp_path/name/name.<ext>`` files from ``ext=[lines]`` and return the folder."""

    def write(name: str = "ds", **files: list[str]) -> Path:
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        for extension, lines in files.items():
            (folder / f"{name}.{extension}").write_text("\n".join(lines) + "\n")
        return folder

    return write
