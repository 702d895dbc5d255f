"""Who learns a user's history and attributes from answers: explanations and block titles
per credential, through the real ASGI app (real model, real Feast SQLite store)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.api.user_tokens import mint_user_token, verify_user_token
from app.cli import main as cli_main
from app.features.schema import UserFeatures
from app.settings import ApiKeySpec, AuthSettings, Settings
from tests.integration.conftest import users_with_history

pytestmark = pytest.mark.integration

RECOMMEND_KEY = "rc-0123456789abcdef"
ADMIN_KEY = "ad-0123456789abcdef"
SECRET = "user-token-secret-0123456789abcdef"
KEYS = [
    ApiKeySpec(name="frontend", key=RECOMMEND_KEY, scopes=["recommend"]),
    ApiKeySpec(name="ops", key=ADMIN_KEY, scopes=["admin", "recommend"]),
]
BROWSER = {"X-API-Key": RECOMMEND_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
USERS = 4


def _settings(built_home: Settings, tmp_path: Path, **auth: Any) -> Settings:
    slots = tmp_path / "slots.toml"
    slots.write_text(
        '[[slots]]\nid = "because"\ntitle = "Because you liked {last_item_title}"\n'
        'fallback_title = "You might like"\nk = 4\nstrategy = "similar_to_last_item"\n'
    )
    return built_home.model_copy(
        update={
            "auth": AuthSettings(keys=KEYS, user_token_secret=SECRET, **auth),
            "content_slots_file": slots,
        }
    )


@pytest.fixture(scope="module")
def client(built_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = _settings(built_home, tmp_path_factory.mktemp("disclosure"))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def users(built_home: Settings) -> list[str]:
    return users_with_history(built_home)[:USERS]


def profile(client: TestClient, user_id: str) -> UserFeatures:
    user = client.app.state.services.engine.features.get_user(user_id)  # type: ignore[attr-defined]
    assert user is not None, user_id
    assert user.history_items, user_id
    return user


def strings(value: object) -> set[str]:
    """Every string anywhere in a JSON value, keys included."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return {k for k in value} | {s for v in value.values() for s in strings(v)}
    if isinstance(value, list):
        return {s for v in value for s in strings(v)}
    return set()


def explained(client: TestClient, user_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(
        "/recommend", params={"user_id": user_id, "k": 20, "explain": "true"}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["source"] == "personalized"
    assert body["explanation_unavailable"] is None
    return body


def reasons(body: dict[str, Any]) -> tuple[int, int]:
    """How many feature and because-you-viewed entries the answer carries in all."""
    explanations = [item["explanation"] for item in body["items"]]
    return (
        sum(len(e["features"]) for e in explanations),
        sum(len(e["because_you_viewed"]) for e in explanations),
    )


def test_the_browser_key_learns_no_history_item_or_attribute(
    client: TestClient, users: list[str]
) -> None:
    for user_id in users:
        user = profile(client, user_id)
        body = explained(client, user_id, BROWSER)
        assert reasons(body) == (0, 0)
        shown = strings(body)
        assert not shown & set(user.history_items), user_id
        assert not shown & set(user.attribute_tokens), user_id
        # Item-level reasons stay: every item says which terms scored it and by how much.
        for item in body["items"]:
            assert {s["source"] for s in item["explanation"]["sources"]} >= {"popularity"}
            total = sum(s["contribution"] for s in item["explanation"]["sources"])
            assert item["explanation"]["model_score"] == pytest.approx(total, abs=1e-4)


def test_admin_key_and_the_users_own_token_see_the_profile_reasons(
    client: TestClient, users: list[str]
) -> None:
    for user_id in users:
        user = profile(client, user_id)
        token = {"X-User-Token": mint_user_token(SECRET, user_id, 60), **BROWSER}
        for headers in (ADMIN, token):
            body = explained(client, user_id, headers)
            features, related = reasons(body)
            assert features > 0, (user_id, headers.keys())
            assert related > 0, (user_id, headers.keys())
            assert strings(body) & set(user.history_items)


def test_a_token_for_someone_else_expired_forged_or_oversized_gives_item_level_only(
    client: TestClient, users: list[str]
) -> None:
    target, other = users[0], users[1]
    valid = mint_user_token(SECRET, target, 60)
    forged = valid[:-2] + ("AA" if not valid.endswith("AA") else "BB")
    for token in (
        mint_user_token(SECRET, other, 60),
        mint_user_token(SECRET, target, 60, now=time.time() - 120),
        mint_user_token("another-secret-0123456789abcdefgh", target, 60),
        forged,
        valid + "x" * 200,
        "not a token",
    ):
        body = explained(client, target, {"X-User-Token": token, **BROWSER})
        assert reasons(body) == (0, 0), token


def test_an_open_recommend_route_gives_anonymous_callers_item_level_only(
    built_home: Settings, tmp_path: Path, users: list[str]
) -> None:
    settings = _settings(built_home, tmp_path, open_recommend=True)
    with TestClient(create_app(settings)) as client:
        body = explained(client, users[0], {})
        assert reasons(body) == (0, 0)
        assert not strings(body) & set(profile(client, users[0]).history_items)


def test_a_block_title_names_the_users_item_only_for_the_user(
    client: TestClient, users: list[str]
) -> None:
    user_id = users[0]
    url = "/content-blocks/because"
    anonymous = client.get(url, params={"user_id": user_id}, headers=BROWSER)
    assert anonymous.status_code == 200, anonymous.text
    assert anonymous.json()["title"] == "You might like"
    html = client.get(url, params={"user_id": user_id}, headers={"Accept": "text/html", **BROWSER})
    assert "Because you liked" not in html.text
    token = {"X-User-Token": mint_user_token(SECRET, user_id, 60), **BROWSER}
    own = client.get(url, params={"user_id": user_id}, headers=token)
    assert own.json()["title"].startswith("Because you liked ")
    assert own.headers["ETag"] != anonymous.headers["ETag"]


def test_minted_tokens_verify_only_for_their_user_secret_and_lifetime() -> None:
    now = 1_700_000_000.0
    token = mint_user_token(SECRET, "u-1", 300, now=now)
    assert verify_user_token(SECRET, token, "u-1", now=now + 299)
    assert not verify_user_token(SECRET, token, "u-1", now=now + 300)
    assert not verify_user_token(SECRET, token, "u-2", now=now)
    assert not verify_user_token(SECRET + "x", token, "u-1", now=now)
    expiry, signature = token.split(".")
    assert not verify_user_token(SECRET, f"{int(expiry) + 1}.{signature}", "u-1", now=now)
    assert not verify_user_token(SECRET, "\u0661\u0662." + signature, "u-1", now=now)


def test_the_cli_mints_a_token_the_server_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECSERVE_AUTH__USER_TOKEN_SECRET", SECRET)
    assert cli_main(["user-token", "u-7", "--ttl", "120"]) == 0
    token = capsys.readouterr().out.strip()
    assert verify_user_token(SECRET, token, "u-7")
    assert not verify_user_token(SECRET, token, "u-7", now=time.time() + 121)

    monkeypatch.delenv("RECSERVE_AUTH__USER_TOKEN_SECRET")
    assert cli_main(["user-token", "u-7"]) == 2
    assert "RECSERVE_AUTH__USER_TOKEN_SECRET" in capsys.readouterr().err
