"""Endpoint configuration: settings plus a TOML file, validated with clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.settings import Settings, WebhookSettings
from app.webhooks.config import WebhookConfigError, load_endpoints

SECRET = "super-secret-signing-key"
GOOD = f"""
[[endpoints]]
name = "crm"
url = "https://crm.example/hooks/recserve"
secret = "{SECRET}"
events = ["engagement.click", "profile.segment_changed"]
timeout_seconds = 3
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "webhooks.toml"
    path.write_text(text)
    return path


def test_file_and_settings_endpoints_are_merged(tmp_path: Path) -> None:
    config = WebhookSettings.model_validate(
        {
            "endpoints": [
                {
                    "name": "mail",
                    "url": "http://mail.local/h",
                    "secret": SECRET,
                    "events": ["engagement.purchase"],
                }
            ],
            "endpoints_file": write(tmp_path, GOOD),
        }
    )
    mail, crm = load_endpoints(config)
    assert (mail.name, crm.name) == ("mail", "crm")
    assert str(crm.url) == "https://crm.example/hooks/recserve"
    assert crm.timeout_seconds == 3
    assert crm.secret.get_secret_value() == SECRET
    assert SECRET not in repr(crm)
    assert SECRET not in str(config)


def test_endpoints_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "RECSERVE_WEBHOOKS__ENDPOINTS",
        f'[{{"name": "crm", "url": "http://crm.local/h", "secret": "{SECRET}", '
        '"events": ["engagement.click"]}]',
    )
    [crm] = load_endpoints(Settings().webhooks)
    assert crm.events == ["engagement.click"]


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ('url = "https://crm.example/hooks/recserve"', 'url = "ftp://crm"', "endpoint #1: url"),
        (f'secret = "{SECRET}"', 'secret = "short"', "endpoint #1: secret"),
        ('"engagement.click", ', '"engagement.teleport", ', "endpoint #1: events.0"),
        ("timeout_seconds = 3", "timeout_seconds = 3\ncolour = 1", "endpoint #1: colour"),
        ("[[endpoints]]", "[endpoint]", "expected [[endpoints]] tables"),
        ("[[endpoints]]", "[[endpoints]", "webhooks file"),
    ],
)
def test_a_bad_file_names_the_endpoint_and_field(
    tmp_path: Path, replace: str, by: str, message: str
) -> None:
    path = write(tmp_path, GOOD.replace(replace, by))
    with pytest.raises(WebhookConfigError, match=re.escape(message)) as raised:
        load_endpoints(WebhookSettings(endpoints_file=path))
    assert str(path) in str(raised.value)
    assert SECRET not in str(raised.value)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + GOOD)
    with pytest.raises(WebhookConfigError, match="'crm' is used twice"):
        load_endpoints(WebhookSettings(endpoints_file=path))


def test_a_timeout_not_below_the_lease_is_refused(tmp_path: Path) -> None:
    config = WebhookSettings(endpoints_file=write(tmp_path, GOOD), lease_seconds=3)
    with pytest.raises(WebhookConfigError, match=r"must be below webhooks\.lease_seconds"):
        load_endpoints(config)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(WebhookConfigError, match=r"nowhere\.toml"):
        load_endpoints(WebhookSettings(endpoints_file=tmp_path / "nowhere.toml"))


def test_the_example_file_loads() -> None:
    example = Path(__file__).parents[2] / "examples" / "webhooks.toml"
    names = [e.name for e in load_endpoints(WebhookSettings(endpoints_file=example))]
    assert names == ["crm", "email-journeys"]
