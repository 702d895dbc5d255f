"""Pseudonyms: stable per key, unrelated across keys, never the raw id."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from app.privacy.pseudonym import DEVELOPMENT_KEY, Pseudonymizer
from app.settings import Settings


def test_same_id_same_pseudonym_and_keys_matter() -> None:
    one = Pseudonymizer(b"k" * 32)
    other = Pseudonymizer(b"x" * 32)

    assert one.of("u0000001") == one.of("u0000001")
    assert one.of("u0000001") != one.of("u0000002")
    assert one.of("u0000001") != other.of("u0000001")
    assert len(one.of("u0000001")) == 32
    assert "u0000001" not in one.of("u0000001")


def test_configured_key_is_used_silently(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(privacy={"pseudonym_key": "a-long-random-secret-value"})
    with caplog.at_level(logging.WARNING):
        made = Pseudonymizer.from_settings(settings)
    assert made.of("u1") == Pseudonymizer(b"a-long-random-secret-value").of("u1")
    assert made.of("u1") != Pseudonymizer(DEVELOPMENT_KEY).of("u1")
    assert not caplog.records


def test_missing_key_warns_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        made = Pseudonymizer.from_settings(Settings())
    assert made.of("u1") == Pseudonymizer(DEVELOPMENT_KEY).of("u1")
    assert "RECSERVE_PRIVACY__PSEUDONYM_KEY is not set" in caplog.text


def test_short_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="pseudonym_key"):
        Settings(privacy={"pseudonym_key": "short"})
