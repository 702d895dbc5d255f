"""The evaluation's data plumbing: a scratch ingestion of the source, and the train part
written back as a RecBole dataset that ``recserve build`` reads like any other."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from app.data.ingest import ingest, load_dataset
from app.data.types import (
    EVENT_TYPE,
    ITEM_ID,
    RETAIL_COLUMNS,
    TIMESTAMP,
    USER_ID,
    VALUE,
    DataFormatError,
    Dataset,
)

ATOMIC_INTERACTION_FIELDS = {
    USER_ID: "token",
    ITEM_ID: "token",
    TIMESTAMP: "float",
    EVENT_TYPE: "token",
    VALUE: "float",
}


@dataclass(frozen=True)
class IngestedCopy:
    """``source`` ingested into ``work / "full"``: its dataset and ingestion's notes."""

    work: Path
    dataset: Dataset
    notes: tuple[str, ...]


@contextmanager
def ingested_copy(source: Path, tool: str) -> Iterator[IngestedCopy]:
    """Ingest ``source`` once into a scratch directory that lives for the block, as every
    protocol run and draw reads it (the same interactions in the same user order); a
    ``DataFormatError`` when ``source`` is missing or, naming ``tool``, not a directory."""
    if not source.exists():
        raise DataFormatError(f"{source}: no such file or directory")
    if not source.is_dir():
        raise DataFormatError(f"{source}: {tool} needs a RecBole atomic dataset directory")
    with tempfile.TemporaryDirectory(prefix="recserve-") as scratch:
        work = Path(scratch)
        report = ingest(source, work / "full")
        yield IngestedCopy(work, load_dataset(work / "full"), tuple(report.notes))


def write_atomic_interactions(train: pd.DataFrame, path: Path) -> Path:
    """Write ``train`` as a RecBole ``.inter`` file that ingestion reads back unchanged,
    retail columns (quantity, price, basket id) included when ``train`` has them."""
    fields = {
        **ATOMIC_INTERACTION_FIELDS,
        **{name: kind for name, kind in RETAIL_COLUMNS.items() if name in train},
    }
    columns = list(fields)
    for column in (USER_ID, ITEM_ID, EVENT_TYPE):
        bad = train[column].astype(str).str.contains(r"[\t\r\n]", regex=True)
        if bad.any():
            raise ValueError(f"{column} {train[column][bad].iloc[0]!r} holds a tab or newline")
    header = "\t".join(f"{name}:{kind}" for name, kind in fields.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    body = train[columns].to_csv(sep="\t", header=False, index=False, lineterminator="\n")
    path.write_text(header + "\n" + body, encoding="utf-8")
    return path


def write_train_dataset(train: pd.DataFrame, source: Path, target: Path) -> None:
    """The train interactions plus the source's own ``.user``/``.item`` files, verbatim."""
    write_atomic_interactions(train, target / f"{target.name}.inter")
    for suffix in ("user", "item"):
        original = source / f"{source.name}.{suffix}"
        if original.is_file():
            shutil.copyfile(original, target / f"{target.name}.{suffix}")
