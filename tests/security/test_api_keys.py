"""Key configuration: plain and hashed keys, the keys file, refusals naming the problem."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi import HTTPException
from pydantic import ValidationError

from app.api.api_keys import ApiKey, AuthConfigError, KeyRing, load_key_specs
from app.api.auth import Access, build_authenticator
from app.settings import ApiKeySpec, AuthSettings

EVENTS_KEY = "ev-0123456789abcdef"
ADMIN_KEY = "ad-0123456789abcdef"


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_plain_and_hashed_keys_identify_their_holder() -> None:
    ring = KeyRing(
        [
            ApiKeySpec(name="ingest", key=EVENTS_KEY, scopes=["events"]),
            ApiKeySpec(name="ops", sha256=_sha256(ADMIN_KEY), scopes=["admin", "recommend"]),
        ]
    )
    ingest, ops = ring.identify(EVENTS_KEY), ring.identify(ADMIN_KEY)
    assert ingest == ApiKey("ingest", frozenset({"events"}))
    assert ops == ApiKey("ops", frozenset({"admin", "recommend"}))
    assert ring.identify(EVENTS_KEY + "x") is None
    assert ring.identify(_sha256(ADMIN_KEY)) is None  # the digest itself is not a key


def test_the_same_key_twice_is_refused() -> None:
    with pytest.raises(AuthConfigError, match="'a' and 'b' are the same key"):
        KeyRing(
            [
                ApiKeySpec(name="a", key=EVENTS_KEY, scopes=["events"]),
                ApiKeySpec(name="b", sha256=_sha256(EVENTS_KEY), scopes=["admin"]),
            ]
        )


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "both", "key": EVENTS_KEY, "sha256": _sha256(EVENTS_KEY), "scopes": ["events"]},
        {"name": "neither", "scopes": ["events"]},
        {"name": "short", "key": "too-short", "scopes": ["events"]},
        {"name": "scope", "key": EVENTS_KEY, "scopes": ["root"]},
        {"name": "none", "key": EVENTS_KEY, "scopes": []},
    ],
)
def test_bad_key_entries_are_refused(entry: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ApiKeySpec.model_validate(entry)


def test_keys_file_adds_to_the_settings_keys(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.toml"
    keys_file.write_text(
        f'[[keys]]\nname = "ops"\nsha256 = "{_sha256(ADMIN_KEY)}"\nscopes = ["admin"]\n'
    )
    auth = AuthSettings(
        keys=[ApiKeySpec(name="ingest", key=EVENTS_KEY, scopes=["events"])], keys_file=keys_file
    )
    assert [spec.name for spec in load_key_specs(auth)] == ["ingest", "ops"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[[keys]\n", "keys.toml"),
        ('keys = "x"\n', "expected [[keys]] tables"),
        ('[[keys]]\nname = "ops"\nscopes = ["admin"]\n', "key #1: entry: Value error"),
    ],
)
def test_unusable_keys_file_names_the_problem(tmp_path: Path, content: str, message: str) -> None:
    keys_file = tmp_path / "keys.toml"
    keys_file.write_text(content)
    with pytest.raises(AuthConfigError, match=message.replace("[", r"\[")):
        load_key_specs(AuthSettings(keys_file=keys_file))


def test_missing_keys_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match=r"missing\.toml"):
        build_authenticator(AuthSettings(keys_file=tmp_path / "missing.toml"))


def test_enabled_without_keys_refuses_to_start() -> None:
    with pytest.raises(AuthConfigError, match="no API key is configured"):
        build_authenticator(AuthSettings(enabled=True))


def test_no_keys_means_open_with_a_loud_warning(caplog: pytest.LogCaptureFixture) -> None:
    authenticator = build_authenticator(AuthSettings())
    assert authenticator.authorize(Access.ADMIN, None) is None
    assert "AUTHENTICATION IS DISABLED" in caplog.text


def test_keys_configured_means_enforced() -> None:
    authenticator = build_authenticator(
        AuthSettings(keys=[ApiKeySpec(name="ingest", key=EVENTS_KEY, scopes=["events"])])
    )
    with pytest.raises(HTTPException) as refused:
        authenticator.authorize(Access.EVENTS, None)
    assert refused.value.status_code == 401


def test_allows_and_requires_key_agree_with_authorize() -> None:
    authenticator = build_authenticator(
        AuthSettings(
            keys=[ApiKeySpec(name="ingest", key=EVENTS_KEY, scopes=["events"])],
            open_recommend=True,
        )
    )
    assert authenticator.requires_key(Access.EVENTS)
    assert not authenticator.requires_key(Access.RECOMMEND)  # opened to the public
    assert authenticator.allows(Access.EVENTS, EVENTS_KEY)
    assert not authenticator.allows(Access.EVENTS, None)
    assert not authenticator.allows(Access.EVENTS, "not-a-key")
    assert not authenticator.allows(Access.ADMIN, EVENTS_KEY)  # 403: lacks the scope
    assert not build_authenticator(AuthSettings()).requires_key(Access.ADMIN)


def test_explicitly_disabled_ignores_keys(caplog: pytest.LogCaptureFixture) -> None:
    authenticator = build_authenticator(
        AuthSettings(
            enabled=False, keys=[ApiKeySpec(name="ingest", key=EVENTS_KEY, scopes=["events"])]
        )
    )
    assert authenticator.authorize(Access.ADMIN, None) is None
    assert "AUTHENTICATION IS DISABLED" in caplog.text
