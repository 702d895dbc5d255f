"""``/items/{item_id}/similar`` through the real ASGI app and a model built by the pipeline."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.artifacts import (
    CURRENT_POINTER,
    MANIFEST_FILE,
    NEIGHBOUR_SCORES_FILE,
    NEIGHBOURS_FILE,
    current_version,
)
from app.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(built_home: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(built_home)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def categories(built_home: Settings) -> dict[str, str]:
    items = pd.read_parquet(built_home.data_dir / "items.parquet")
    return dict(zip(items["item_id"], items["category"], strict=True))


def similar_url(item_id: str) -> str:
    return f"/items/{quote(item_id, safe='/')}/similar"


def test_every_item_gets_k_distinct_other_items_best_first(
    client: TestClient, categories: dict[str, str]
) -> None:
    for item_id in categories:
        response = client.get(similar_url(item_id), params={"k": 10})
        assert response.status_code == 200, item_id
        body = response.json()
        returned = [i["item_id"] for i in body["items"]]
        assert body["item_id"] == item_id
        assert len(returned) == 10, item_id
        assert len(set(returned)) == 10
        assert item_id not in returned
        assert set(returned) <= set(categories)
        scores = [i["score"] for i in body["items"]]
        assert scores == sorted(scores, reverse=True)
        assert body["model_version"]


def test_ids_with_a_slash_and_a_space_are_routed(
    client: TestClient, categories: dict[str, str]
) -> None:
    awkward = [i for i in categories if "/" in i and " " in i]
    assert awkward, "the synthetic shop should hold an id with '/' and a space"
    body = client.get(similar_url(awkward[0]), params={"k": 3}).json()
    assert body["item_id"] == awkward[0]
    assert len(body["items"]) == 3


def test_the_top_neighbour_shares_its_category_more_often_than_chance(
    client: TestClient, categories: dict[str, str]
) -> None:
    same = [
        categories[client.get(similar_url(i), params={"k": 1}).json()["items"][0]["item_id"]]
        == category
        for i, category in categories.items()
    ]
    shares = pd.Series(categories).value_counts(normalize=True)
    chance = float((shares**2).sum())  # a random other item shares the category this often
    assert sum(same) / len(same) > 2 * chance


def test_unknown_item_is_404_naming_it(client: TestClient) -> None:
    response = client.get(similar_url("no such/item"))
    assert response.status_code == 404
    assert "unknown item 'no such/item'" in response.json()["message"]


@pytest.mark.parametrize("k", [0, 101, "ten"])
def test_bad_k_is_422(client: TestClient, categories: dict[str, str], k: object) -> None:
    response = client.get(similar_url(next(iter(categories))), params={"k": k})
    assert response.status_code == 422
    assert any(err["loc"][-1] == "k" for err in response.json()["detail"])


def test_a_model_without_the_index_still_serves_and_answers_503(
    built_home: Settings, categories: dict[str, str], tmp_path: Path
) -> None:
    version = current_version(built_home.model_root)
    assert version is not None
    old = tmp_path / "models" / version
    shutil.copytree(built_home.model_root / version, old)
    (old / NEIGHBOURS_FILE).unlink()
    (old / NEIGHBOUR_SCORES_FILE).unlink()
    manifest = json.loads((old / MANIFEST_FILE).read_text())
    del manifest["artifacts"]  # as written before the index existed
    (old / MANIFEST_FILE).write_text(json.dumps(manifest))
    (old.parent / CURRENT_POINTER).write_text(version + "\n")
    settings = built_home.model_copy(update={"models_dir": old.parent})
    with TestClient(create_app(settings)) as old_client:
        response = old_client.get(similar_url(next(iter(categories))))
        assert response.status_code == 503
        assert response.json()["message"] == "model has no neighbour index"
        assert old_client.get("/readyz").json()["ready"] is True
