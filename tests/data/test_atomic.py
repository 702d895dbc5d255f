from __future__ import annotations

from pathlib import Path

import pytest

from app.data.atomic import parse_header, read_atomic_dir
from app.data.types import DataFormatError, FieldType
from tests.data.conftest import BADSHOP, AtomicWriter


def test_reads_every_value_as_the_exact_string() -> None:
    tables = read_atomic_dir(BADSHOP)
    items = tables.items
    assert items is not None
    ids = list(items.frame["item_id"])
    # Leading zeros, "NA", spaces and punctuation all survive as written.
    assert ids[:3] == ["007", "sku 17/b", "NA"]
    assert items.frame["title"].iloc[1] == 'Odd, id; with "punct"'
    assert items.fields == {
        "item_id": FieldType.TOKEN,
        "title": FieldType.TOKEN_SEQ,
        "price": FieldType.FLOAT,
        "tags": FieldType.FLOAT_SEQ,
    }
    assert tables.users is not None
    assert tables.users.frame["zip"].iloc[0] == "02134"


def test_rows_with_wrong_field_count_are_set_aside_with_their_line() -> None:
    inter = read_atomic_dir(BADSHOP).interactions
    malformed = inter.malformed
    assert list(malformed["line"]) == [12, 13]
    assert set(malformed["reason"]) == {"wrong number of fields"}
    # The extra field is kept (joined) so the quarantine file loses nothing.
    assert malformed["timestamp"].iloc[1] == "881250955\textra"
    assert malformed["timestamp"].iloc[0] == ""
    # Well-formed rows keep their physical line numbers around the malformed ones.
    assert inter.rows_read == 17
    assert list(inter.lines[-3:]) == [16, 17, 18]
    assert 12 not in inter.lines
    assert 13 not in inter.lines


def test_user_and_item_files_are_optional(write_atomic: AtomicWriter) -> None:
    folder = write_atomic(inter=["user_id:token\titem_id:token", "a\tb"])
    tables = read_atomic_dir(folder)
    assert tables.users is None
    assert tables.items is None
    assert list(tables.interactions.frame["item_id"]) == ["b"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("user_id:token\titem_id", "'item_id' is not of the form name:type"),
        ("user_id:token\titem_id:int", "unknown type 'int'"),
        ("user_id:token\trating:float", "lacks required field(s) item_id"),
        ("user_id:token\tuser_id:token\titem_id:token", "'user_id' appears twice"),
    ],
)
def test_unusable_header_names_file_and_line(
    write_atomic: AtomicWriter, header: str, message: str
) -> None:
    folder = write_atomic(inter=[header, "a\tb"])
    with pytest.raises(DataFormatError, match=r"ds\.inter:1: ") as error:
        read_atomic_dir(folder)
    assert message in str(error.value)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "ds.inter").write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"ds\.inter:1: empty file"):
        read_atomic_dir(tmp_path / "ds")


def test_non_utf8_bytes_name_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "ds.inter").write_bytes(b"user_id:token\titem_id:token\na\tb\nc\t\xff\xfe\n")
    with pytest.raises(DataFormatError, match=r"ds\.inter:3: not UTF-8 text"):
        read_atomic_dir(folder)


def test_missing_inter_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    with pytest.raises(DataFormatError, match=r"ds\.inter: missing"):
        read_atomic_dir(tmp_path / "ds")


def test_header_with_bom_and_crlf_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "x.inter"
    path.write_bytes(b"\xef\xbb\xbfuser_id:token\titem_id:token\r\n")
    assert list(parse_header(path, ("user_id", "item_id"))) == ["user_id", "item_id"]


def test_errors_quote_at_most_an_excerpt_of_the_input(write_atomic: AtomicWriter) -> None:
    huge = "x" * 20_000
    folder = write_atomic(inter=[f"user_id:token\titem_id:token\t{huge}:nonsense", "u\ti\t1"])
    with pytest.raises(DataFormatError) as refused:
        read_atomic_dir(folder)
    message = str(refused.value)
    assert len(message) < 600
    assert message.startswith(f"{folder / 'ds.inter'}:1: header field")
    assert "more characters not shown" in message


def test_a_header_line_too_long_is_refused_without_reading_it_whole(
    write_atomic: AtomicWriter,
) -> None:
    folder = write_atomic(inter=["user_id:token\titem_id:token\t" + "y" * 200_000])
    with pytest.raises(DataFormatError, match="header line over 65536 bytes") as refused:
        read_atomic_dir(folder)
    assert "yyyy" not in str(refused.value)


def test_a_dataset_file_linking_out_of_its_directory_is_refused(
    write_atomic: AtomicWriter, tmp_path: Path
) -> None:
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:the first line of a system file\n")
    folder = write_atomic(inter=["user_id:token\titem_id:token", "u\ti"])
    (folder / "ds.item").symlink_to(secret)
    with pytest.raises(DataFormatError, match="a link out of the dataset directory") as refused:
        read_atomic_dir(folder)
    assert "root:x" not in str(refused.value)
