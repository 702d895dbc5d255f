"""``recserve`` explains itself: a version, help on every option of every command, and no
internal module names."""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Iterator

import pytest

from app.cli import _parser, main


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_version_is_the_installed_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"recserve {importlib.metadata.version('recserve')}"


def test_every_option_of_every_command_has_help_without_module_names() -> None:
    commands = list(_commands(_parser()))
    assert {path for path, _ in commands} >= {
        ("demo",),
        ("generate",),
        ("webhooks", "dead-letters"),
    }
    for path, parser in commands:
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"recserve {' '.join(path)} {action.option_strings[0]}"
        text = parser.format_help()
        assert "app." not in text, (path, text)
        assert "issue" not in text.lower(), (path, text)
        assert "%%" not in text, (path, text)  # a description is not %-formatted


def test_demo_help_says_what_it_does_with_an_existing_home() -> None:
    demo = dict(_commands(_parser()))[("demo",)]
    text = " ".join(demo.format_help().split())
    assert "reuses the last build" in text
    assert "rebuilds, events included" in text


def test_the_top_level_help_describes_the_product_not_the_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # however argparse wrapped it
    assert "recserve demo" in help_text
    assert "recserve build --data DIR" in help_text
    for command in ("generate", "build", "evaluate", "serve", "demo", "consume", "webhooks"):
        assert command in help_text
    assert "app." not in help_text  # no module paths
