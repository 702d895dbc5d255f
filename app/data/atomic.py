"""Reader for RecBole atomic files: ``DIR/NAME.inter`` (required), ``.user``, ``.item``.

Each file is tab-separated with a header of ``name:type`` fields, type one of token,
token_seq, float, float_seq. Every value is read as a string (no quoting, no NA guessing), so
ids such as ``007``, ``NA`` or ``sku 17/b`` survive unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.data.raw import RawTable, first_non_utf8_line, read_delimited
from app.data.types import ITEM_ID, USER_ID, DataFormatError, FieldType

INTERACTIONS_TABLE = "interactions"
USERS_TABLE = "users"
ITEMS_TABLE = "items"


@dataclass
class RawTables:
    """The raw input tables; ``users``/``items`` are None when the source has no such file."""

    interactions: RawTable
    users: RawTable | None
    items: RawTable | None


MAX_HEADER_BYTES = 65_536  # a header names a few dozen fields
INTERACTION_KEYS = (USER_ID, ITEM_ID)


@dataclass(frozen=True)
class AtomicFiles:
    """The files of an atomic dataset; ``users``/``items`` are None when there is no such file."""

    interactions: Path
    users: Path | None
    items: Path | None

    def read_users(self) -> RawTable | None:
        return None if self.users is None else read_atomic_file(self.users, USERS_TABLE, (USER_ID,))

    def read_items(self) -> RawTable | None:
        return None if self.items is None else read_atomic_file(self.items, ITEMS_TABLE, (ITEM_ID,))


def read_atomic_dir(dataset_dir: Path) -> RawTables:
    """Read ``dataset_dir/NAME.{inter,user,item}`` where NAME is the folder name."""
    files = atomic_files(dataset_dir)
    return RawTables(
        interactions=read_atomic_file(files.interactions, INTERACTIONS_TABLE, INTERACTION_KEYS),
        users=files.read_users(),
        items=files.read_items(),
    )


def atomic_files(dataset_dir: Path) -> AtomicFiles:
    """The files of ``dataset_dir``; raise ``DataFormatError`` when it is not a dataset."""
    if not dataset_dir.is_dir():
        raise DataFormatError(f"{dataset_dir}: not a directory")
    name = dataset_dir.name
    inter_path = dataset_dir / f"{name}.inter"
    if not inter_path.is_file():
        raise DataFormatError(f"{inter_path}: missing (a RecBole dataset needs NAME.inter)")
    user_path = dataset_dir / f"{name}.user"
    item_path = dataset_dir / f"{name}.item"
    for path in (inter_path, user_path, item_path):
        _refuse_links_out(dataset_dir, path)
    return AtomicFiles(
        interactions=inter_path,
        users=user_path if user_path.is_file() else None,
        items=item_path if item_path.is_file() else None,
    )


def _refuse_links_out(dataset_dir: Path, path: Path) -> None:
    """A file of the dataset must be in its directory: a link elsewhere (a system file, say)
    would be read, and quoted in errors, as if it were data."""
    if path.exists() and path.resolve().parent != dataset_dir.resolve():
        raise DataFormatError(f"{path}: a link out of the dataset directory; copy the file in")


def read_atomic_file(path: Path, table: str, required: tuple[str, ...]) -> RawTable:
    """Read one atomic file; raise ``DataFormatError`` if its header is unusable."""
    fields = parse_header(path, required)
    return read_delimited(
        path, table=table, names=list(fields), fields=fields, delimiter="\t", quoted=False
    )


def parse_header(path: Path, required: tuple[str, ...]) -> dict[str, FieldType]:
    """Field name -> type from the first line of an atomic file."""
    with path.open("rb") as handle:
        raw_header = handle.readline(MAX_HEADER_BYTES + 1)
    if len(raw_header) > MAX_HEADER_BYTES:
        raise DataFormatError(f"{path}:1: header line over {MAX_HEADER_BYTES} bytes")
    if not raw_header.strip():
        raise DataFormatError(f"{path}:1: empty file or empty header line")
    if first_non_utf8_line(raw_header) is not None:
        raise DataFormatError(f"{path}:1: not UTF-8 text")
    header = raw_header.decode("utf-8").removeprefix("\ufeff").rstrip("\r\n")
    fields: dict[str, FieldType] = {}
    for column, spec in enumerate(header.split("\t"), start=1):
        name, sep, type_name = spec.strip().rpartition(":")
        if not sep or not name:
            raise DataFormatError(
                f"{path}:1: header field {column} {spec!r} is not of the form name:type"
            )
        try:
            field_type = FieldType(type_name)
        except ValueError:
            allowed = ", ".join(t.value for t in FieldType)
            raise DataFormatError(
                f"{path}:1: header field {spec!r} has unknown type {type_name!r} "
                f"(expected one of {allowed})"
            ) from None
        if name in fields:
            raise DataFormatError(f"{path}:1: header field {name!r} appears twice")
        fields[name] = field_type
    missing = [name for name in required if name not in fields]
    if missing:
        raise DataFormatError(f"{path}:1: header lacks required field(s) {', '.join(missing)}")
    return fields
