import re
from pathlib import Path

import pytest

from loadtests.slots import slot_ids

EXAMPLE = Path(__file__).parents[2] / "examples" / "content_slots.toml"


def test_the_example_file_gives_its_slots_in_page_order() -> None:
    assert slot_ids(EXAMPLE) == ["home-top", "because-you-liked", "books-under-50"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("title = 'no slots here'\n", "declares no [[slots]]"), ("[[slots]\n", "content slots file")],
)
def test_a_file_without_slots_stops_the_load_test_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "slots.toml"
    path.write_text(text)
    with pytest.raises(SystemExit, match=re.escape(message)) as stopped:
        slot_ids(path)
    assert str(path) in str(stopped.value)


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=re.escape("missing.toml")):
        slot_ids(tmp_path / "missing.toml")
