"""Repeat mode (``repeat=true``) through the real app: real Feast (SQLite), the real ONNX
model and the repeat model the build shipped beside it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.artifacts import (
    REPEAT_HYPERPARAMETERS,
    REPEAT_USERS_FILE,
    current_version,
    read_manifest,
)
from app.privacy.pseudonym import Pseudonymizer
from app.settings import Settings
from tests.api.experiment_support import experiment_client

pytestmark = pytest.mark.integration

K = 10


@pytest.fixture(scope="module")
def settings(built_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    slots = tmp_path_factory.mktemp("repeat-slots") / "slots.toml"
    slots.write_text(
        '[[slots]]\nid = "again"\ntitle = "Buy again"\nk = 10\nstrategy = "personalized"\n'
        "repeat = true\n\n"
        '[[slots]]\nid = "new"\ntitle = "For you"\nk = 10\nstrategy = "personalized"\n'
    )
    return built_home.model_copy(update={"content_slots_file": slots})


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def seen(built_home: Settings) -> dict[str, set[str]]:
    inter = pd.read_parquet(built_home.data_dir / "interactions.parquet")
    return {u: set(g) for u, g in inter.groupby("user_id")["item_id"]}


@pytest.fixture(scope="module")
def rebuyers(built_home: Settings) -> list[str]:
    """Users who bought some item more than once, heaviest rebuyers first."""
    inter = pd.read_parquet(built_home.data_dir / "interactions.parquet")
    pairs = inter.groupby(["user_id", "item_id"]).size()
    repeats = (pairs[pairs > 1]).groupby(level="user_id").sum().sort_values(ascending=False)
    return [str(u) for u in repeats.index[:30]]


def _repeat_get(client: TestClient, user_id: str, **extra: str) -> dict[str, Any]:
    params = {"user_id": user_id, "k": str(K), "repeat": "true", **extra}
    response = client.get("/recommend", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_build_kept_repeats_on_for_a_shop_whose_users_rebuy(
    built_home: Settings, seen: dict[str, set[str]]
) -> None:
    version = current_version(built_home.model_root)
    assert version is not None
    model_dir = Path(built_home.model_root) / version
    params = read_manifest(model_dir).hyperparameters
    assert params[REPEAT_HYPERPARAMETERS]["exploration_weight"] is not None
    # Rows are keyed by pseudonym: the model files hold no raw user id.
    keys = set(json.loads((model_dir / REPEAT_USERS_FILE).read_text()))
    pseudonyms = Pseudonymizer.from_settings(built_home)
    assert keys == {pseudonyms.of(user) for user in seen}
    assert not keys & set(seen)


def test_repeat_mode_returns_bought_items_flagged_and_the_default_excludes_them(
    client: TestClient, seen: dict[str, set[str]], rebuyers: list[str]
) -> None:
    with_repeats = 0
    for user_id in rebuyers[:10]:
        body = _repeat_get(client, user_id)
        items = body["items"]
        assert len(items) == K
        flagged = {i["item_id"] for i in items if i["repeat"]}
        unflagged = {i["item_id"] for i in items if not i["repeat"]}
        assert flagged <= seen[user_id]
        assert not unflagged & seen[user_id]
        scores = [i["score"] for i in items]
        assert scores == sorted(scores, reverse=True)
        with_repeats += bool(flagged)
        default = client.get("/recommend", params={"user_id": user_id, "k": K}).json()
        assert not {i["item_id"] for i in default["items"]} & seen[user_id]
        assert all("repeat" not in i for i in default["items"])
    assert with_repeats == 10


def test_explicit_exclude_wins_over_repeats(client: TestClient, rebuyers: list[str]) -> None:
    user_id = rebuyers[0]
    first = _repeat_get(client, user_id)
    repeats = [i["item_id"] for i in first["items"] if i["repeat"]]
    assert repeats
    response = client.post(
        "/recommend", json={"user_id": user_id, "k": K, "repeat": True, "exclude": repeats}
    )
    returned = {i["item_id"] for i in response.json()["items"]}
    assert not returned & set(repeats)
    assert len(returned) == K


def test_cache_keys_keep_repeat_and_default_lists_apart(
    client: TestClient, seen: dict[str, set[str]], rebuyers: list[str]
) -> None:
    user_id = rebuyers[20]  # no earlier test asked for this user's lists
    default = client.get("/recommend", params={"user_id": user_id, "k": K}).json()
    repeated = _repeat_get(client, user_id)
    assert repeated["cache"] is None  # the default list cached first is not served here
    again = _repeat_get(client, user_id)
    assert again["cache"] == "local"
    assert again["items"] == repeated["items"]  # the flags survive the cache
    default_again = client.get("/recommend", params={"user_id": user_id, "k": K}).json()
    assert default_again["cache"] == "local"
    assert default_again["items"] == default["items"]
    assert not {i["item_id"] for i in default_again["items"]} & seen[user_id]


def test_get_post_and_a_repeat_slot_answer_the_same_list(
    client: TestClient, rebuyers: list[str]
) -> None:
    for user_id in rebuyers[21:25]:
        got = _repeat_get(client, user_id)["items"]
        posted = client.post(
            "/recommend", json={"user_id": user_id, "k": K, "repeat": True}
        ).json()["items"]
        assert posted == got
        blocks = client.get(
            "/content-blocks", params={"slots": "again,new", "user_id": user_id}
        ).json()["blocks"]
        slot_items = [i["item_id"] for i in blocks[0]["items"]]
        assert slot_items == [i["item_id"] for i in got]
        assert not set(slot_items) & {i["item_id"] for i in blocks[1]["items"]}


@pytest.mark.parametrize("value", ["maybe", "2", ""])
def test_a_bad_repeat_value_is_422_naming_the_field(client: TestClient, value: str) -> None:
    response = client.get("/recommend", params={"user_id": "u1", "repeat": value})
    assert response.status_code == 422
    assert any(e["loc"][-1] == "repeat" for e in response.json()["detail"])
    posted = client.post("/recommend", json={"user_id": "u1", "repeat": value or [1]})
    assert posted.status_code == 422
    assert any(e["loc"][-1] == "repeat" for e in posted.json()["detail"])


def test_explanations_cover_repeat_items(client: TestClient, rebuyers: list[str]) -> None:
    body = _repeat_get(client, rebuyers[0], explain="true")
    items = body["items"]
    assert any(i["repeat"] for i in items)
    assert all("explanation" in i for i in items)


REPEAT_EXPERIMENT = """
[[experiments]]
id = "repeat-strategies"
traffic_share = 1.0
control = "model"
min_detectable_effect = 0.2
targeting = { devices = ["kiosk"] }
[[experiments.variants]]
name = "model"
weight = 1
strategy = { kind = "model" }
[[experiments.variants]]
name = "diversified"
weight = 1
strategy = { kind = "diversified", lambda = 0.7 }
[[experiments.variants]]
name = "mix"
weight = 1
strategy = { kind = "candidate_mix", source_weights = { model = 2, popular = 1 } }
"""


def test_every_experiment_strategy_keeps_the_repeat_flags_true(
    built_home: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    seen: dict[str, set[str]],
    rebuyers: list[str],
) -> None:
    directory = tmp_path_factory.mktemp("repeat-experiments")
    variants: dict[str, int] = {}
    with experiment_client(built_home, directory, REPEAT_EXPERIMENT) as client:
        for user_id in rebuyers:
            body = client.post(
                "/recommend",
                json={"user_id": user_id, "k": K, "repeat": True, "context": {"device": "kiosk"}},
            ).json()
            items = body["items"]
            assert len(items) == K
            flagged = {i["item_id"] for i in items if i["repeat"]}
            assert flagged <= seen[user_id], body["variant"]
            assert not {i["item_id"] for i in items if not i["repeat"]} & seen[user_id]
            variants[body["variant"]] = variants.get(body["variant"], 0) + bool(flagged)
    assert set(variants) == {"model", "diversified", "mix"}
    assert all(variants.values())  # each strategy served rebuys
