"""The slots file: what start-up accepts, and the messages for what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.artifacts import CatalogueItem
from app.serving.catalogue.items import build_catalogue
from app.serving.catalogue.rule_config import RulesConfigError, load_business_rules
from app.serving.surfaces.content_slots import load_slots

CATALOGUE = build_catalogue(
    [
        CatalogueItem(item_id="sku-1", title="One", categories=["books"], price=5.0),
        CatalogueItem(item_id="sku-2", title="Two", categories=["toys"], price=9.0),
    ],
    ("sku-1", "sku-2"),
)
EXAMPLES = Path(__file__).parents[3] / "examples"

GOOD = """
[[slots]]
id = "because"
title = "Because you liked {last_item_title} ({last_item_category}) {{not a field}}"
fallback_title = "Popular"
k = 4
strategy = "similar_to_last_item"
fallback_items = ["sku-1"]
[slots.filters]
categories = ["books"]
price_max = 10
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slots.toml"
    path.write_text(text)
    return path


def test_a_good_file_loads_and_titles_fill_in_safely(tmp_path: Path) -> None:
    slot = load_slots(write(tmp_path, GOOD), CATALOGUE)["because"]
    assert slot.k == 4
    assert slot.max_age_seconds == 60
    values = {"last_item_title": "{last_item_category} <b>", "last_item_category": "books"}
    # Values are inserted once, never re-parsed as a template.
    assert slot.render_title(values) == (
        "Because you liked {last_item_category} <b> (books) {not a field}"
    )
    assert slot.render_title({"last_item_title": "X"}) == "Popular"
    assert load_slots(None, CATALOGUE) == {}


def test_the_example_files_are_valid() -> None:
    catalogue = build_catalogue(
        [CatalogueItem(item_id=f"sku-00000{i}", title="t", categories=["books"]) for i in (1, 2)],
        (),
    )
    assert list(load_slots(EXAMPLES / "content_slots.toml", catalogue)) == [
        "home-top",
        "because-you-liked",
        "books-under-50",
    ]
    rules = load_business_rules(EXAMPLES / "business_rules.toml")
    assert [b.factor for b in rules.boosts] == [1.5, 3.0]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'id = "a"\ntitle = "Hi {user.__class__}"\nk = 1\nstrategy = "popular"',
            "slots[a].title: unsupported placeholder {user.__class__}",
        ),
        (
            'id = "a"\ntitle = "{last_item_title:>999999}"\nfallback_title = "x"\nk = 1\n'
            'strategy = "popular"',
            "slots[a].title: unsupported placeholder {last_item_title:>999999}",
        ),
        (
            'id = "a"\ntitle = "For {last_item_title}"\nk = 1\nstrategy = "popular"',
            "slots[a]: fallback_title is required when the title has placeholders",
        ),
        ('id = "a"\ntitle = "x"\nk = 101\nstrategy = "popular"', "slots[a].k: Input should be"),
        ('id = "a"\ntitle = "x"\nk = 1\nstrategy = "magic"', "slots[a].strategy: Input should be"),
        (
            'id = "a"\ntitle = "x"\nk = 1\nstrategy = "popular"\ncolour = 1',
            "slots[a].colour: Extra",
        ),
        (
            'id = "a"\ntitle = "x"\nk = 1\nstrategy = "popular"\n'
            "filters = { price_min = 5, price_max = 1 }",
            "slots[a].filters: price_min 5.0 is above price_max 1.0",
        ),
        (
            'id = "a"\ntitle = "x"\nk = 1\nstrategy = "popular"\nfallback_items = ["nope"]',
            "slots[a].fallback_items: unknown item(s) nope",
        ),
        (
            'id = "a"\ntitle = "x"\nk = 1\nstrategy = "popular"\n'
            'filters = { categories = ["bookz"] }',
            "slots[a].filters: unknown categor(ies) bookz (known: books, toys)",
        ),
    ],
)
def test_a_bad_slot_is_refused_naming_the_file_slot_and_field(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = write(tmp_path, f"[[slots]]\n{body}\n")
    with pytest.raises(RulesConfigError) as error:
        load_slots(path, CATALOGUE)
    assert str(error.value).startswith(f"{path}:\n")
    assert expected in str(error.value)


def test_repeated_ids_empty_files_and_bad_toml_are_refused(tmp_path: Path) -> None:
    slot = '[[slots]]\nid = "a"\ntitle = "x"\nk = 1\nstrategy = "popular"\n'
    with pytest.raises(RulesConfigError, match=r"slot ids must be unique \(repeated: a\)"):
        load_slots(write(tmp_path, slot * 2), CATALOGUE)
    with pytest.raises(RulesConfigError, match="slots: Field required"):
        load_slots(write(tmp_path, ""), CATALOGUE)
    with pytest.raises(RulesConfigError, match=r"slots\.toml: Expected"):
        load_slots(write(tmp_path, "[[slots]\n"), CATALOGUE)


def test_a_bad_rules_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[boosts]]\ncategory = "books"\nitem_id = "sku-1"\nfactor = 0\n')
    with pytest.raises(RulesConfigError) as error:
        load_business_rules(path)
    message = str(error.value)
    assert "boosts[#0].factor: Input should be greater than 0" in message
