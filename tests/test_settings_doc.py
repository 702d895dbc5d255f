"""README.md's settings table is the one generated from ``Settings``."""

from __future__ import annotations

from app.settings import Settings
from app.settings_doc import README, markdown_table, render_readme, rows


def test_readme_settings_table_is_current() -> None:
    text = README.read_text()
    assert render_readme(text) == text, "run: python -m app.settings_doc --write"


def test_every_setting_has_a_meaning_and_nested_groups_use_double_underscores() -> None:
    table = rows(Settings)
    assert all(meaning for _, _, meaning in table), [v for v, _, m in table if not m]
    variables = {variable for variable, _, _ in table}
    assert "RECSERVE_CACHE__LOCAL_TTL_SECONDS" in variables
    assert "RECSERVE_HOME" in variables
    assert markdown_table().count("\n") == len(table) + 1
