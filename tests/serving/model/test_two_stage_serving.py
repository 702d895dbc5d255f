"""A small synthetic shop forced into the two-stage model (``dense_max_items=0``), built for
real and served through the ASGI app: ANN candidates, ONNX ranking, business rules, the
neighbour index and hot reload, with every large array memory-mapped read-only."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.artifacts import (
    ANN_INDEX_FILE,
    DEMOGRAPHIC_ITEMS_FILE,
    DEMOGRAPHIC_WEIGHTS_FILE,
    ITEM_VECTORS_FILE,
    MANIFEST_FILE,
    TWO_STAGE_MODEL_TYPE,
    current_version,
)
from app.monitoring.snapshot import load_snapshot
from app.serving.catalogue.items import load_catalogue
from app.serving.model.ranking import ModelLoadError, load_model
from app.serving.types import RecommendRequest
from app.settings import Settings

pytestmark = pytest.mark.integration
K = 8


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from app.data.synthetic import generate_shop
    from app.training.pipeline import build

    root = tmp_path_factory.mktemp("two_stage")
    source = generate_shop(root / "source", n_users=300, n_items=400, n_events=9_000, seed=5)
    rules = root / "rules.toml"
    rules.write_text('[filters]\nexclude_categories = ["books"]\n')
    settings = Settings(home=root / "home", dense_max_items=0, business_rules_file=rules)
    build(settings, source)
    return settings


@pytest.fixture(scope="module")
def client(home: Settings) -> Iterator[TestClient]:
    from app.api.main import create_app

    with TestClient(create_app(home)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def histories(home: Settings) -> dict[str, set[str]]:
    interactions = pd.read_parquet(home.data_dir / "interactions.parquet")
    return {str(u): set(g["item_id"]) for u, g in interactions.groupby("user_id")}


def model_dir(settings: Settings) -> Path:
    version = current_version(settings.model_root)
    assert version is not None
    return settings.model_root / version


def test_the_build_published_a_two_stage_model(home: Settings) -> None:
    model = load_model(model_dir(home))
    assert model.manifest.model_type == TWO_STAGE_MODEL_TYPE
    assert model.ranker is not None
    assert model.manifest.offline_metrics["candidate_recall@10"] >= 0.9
    # Its drift reference has every feature but the score: the ranking graph scores candidates.
    snapshot = load_snapshot(model_dir(home))
    assert snapshot is not None
    assert snapshot.reference.score_edges == []
    assert "score" not in snapshot.reference.histograms
    assert snapshot.reference.histograms["item_category"].observations > 0


def test_cold_users_with_attributes_get_lists_of_their_own(
    client: TestClient, home: Settings, histories: dict[str, set[str]]
) -> None:
    model = load_model(model_dir(home))
    assert model.ranker is not None
    assert len(model.ranker.arrays.demographic_items) > 0
    users = pd.read_parquet(home.data_dir / "users.parquet")
    cold = sorted(set(users["user_id"].astype(str)) - set(histories))[:12]
    assert len(cold) >= 6  # the generator leaves 5% of users without events
    lists = set()
    for user in cold:
        body = client.get("/recommend", params={"user_id": user, "k": K}).json()
        assert body["source"] == "cold_start", body
        returned = tuple(i["item_id"] for i in body["items"])
        assert len(set(returned)) == K
        lists.add(returned)
    assert len(lists) >= 2  # attributes move the list


def test_a_model_trained_before_the_demographic_lists_still_serves_cold_users(
    home: Settings, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(model_dir(home), old)
    manifest = json.loads((old / MANIFEST_FILE).read_text())
    manifest["artifacts"] = [
        f
        for f in manifest["artifacts"]
        if f not in (DEMOGRAPHIC_ITEMS_FILE, DEMOGRAPHIC_WEIGHTS_FILE)
    ]
    manifest["hyperparameters"]["w_demo_cold"] = 0.0
    (old / MANIFEST_FILE).write_text(json.dumps(manifest))
    (old / DEMOGRAPHIC_ITEMS_FILE).unlink()
    (old / DEMOGRAPHIC_WEIGHTS_FILE).unlink()
    model = load_model(old)
    assert model.ranker is not None
    assert len(model.ranker.arrays.demographic_items) == 0
    items, scores = model.ranker.rank(np.empty(0, dtype=np.int64), np.array([0, 1]))
    assert len(items) >= K
    assert np.isfinite(scores).all()


@pytest.mark.parametrize(
    ("file", "damage", "reason"),
    [
        (DEMOGRAPHIC_WEIGHTS_FILE, lambda weights: weights[:, :-1], "do not fit"),
        (DEMOGRAPHIC_ITEMS_FILE, lambda items: items + 10**9, "fall outside"),
    ],
)
def test_a_demographic_file_that_does_not_fit_is_refused_at_load(
    home: Settings,
    tmp_path: Path,
    file: str,
    damage: Callable[[np.ndarray], np.ndarray],
    reason: str,
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(model_dir(home), broken)
    np.save(broken / file, damage(np.load(broken / file)))
    with pytest.raises(ModelLoadError, match=reason):
        load_model(broken)


def test_personalised_lists_leave_out_the_history_and_filtered_categories(
    client: TestClient, home: Settings, histories: dict[str, set[str]]
) -> None:
    items = pd.read_parquet(home.data_dir / "items.parquet").set_index("item_id")["category"]
    lists = {}
    for user in sorted(histories, key=lambda u: -len(histories[u]))[:15]:
        body = client.get("/recommend", params={"user_id": user, "k": K}).json()
        assert body["source"] == "personalized"
        returned = [i["item_id"] for i in body["items"]]
        assert len(returned) == K
        assert len(set(returned)) == K
        assert not set(returned) & histories[user]
        assert "books" not in {items[i] for i in returned}
        scores = [i["score"] for i in body["items"]]
        assert scores == sorted(scores, reverse=True)
        lists[user] = tuple(returned)
    popular = client.get("/recommend", params={"user_id": "nobody", "k": K}).json()
    assert popular["source"] == "popular"
    # Personalised: users get different lists, and not just the popular one.
    assert len(set(lists.values())) >= 10
    assert tuple(i["item_id"] for i in popular["items"]) not in set(lists.values())


async def test_a_list_left_short_by_exclusions_is_topped_up_from_popular_items(
    home: Settings, histories: dict[str, set[str]]
) -> None:
    from app.bootstrap import build_engine, close_engine

    user = max(histories, key=lambda u: len(histories[u]))
    engine = await build_engine(home)
    try:
        model = engine.model
        profile = engine.features.get_user(user)
        assert profile is not None
        history = model.item_indices(profile.history_items)
        found, scores = model.score_candidates(history, list(profile.attribute_tokens))
        assert found is not None
        # Exclude all but the three best candidates the rules allow: the other K - 3 must
        # come from elsewhere.
        assert engine.rules is not None
        ranked = [model.item_ids[i] for i in found[np.argsort(-scores, kind="stable")]]
        kept = engine.rules.allowed(ranked)[:3]
        excluded = tuple(i for i in ranked if i not in kept)
        request = RecommendRequest(user, K, exclude=excluded, use_cache=False)
        answer = await engine.recommend(request)
    finally:
        await close_engine(engine)
    returned = [i.item_id for i in answer.items]
    assert len(returned) == K
    assert returned[:3] == kept
    assert not set(returned) & (histories[user] | set(excluded))
    assert set(returned[3:]) <= set(model.popular)
    scores_out = [i.score for i in answer.items]
    assert scores_out == sorted(scores_out, reverse=True)


def test_a_hidden_item_leaves_the_lists_that_held_it(
    client: TestClient, histories: dict[str, set[str]]
) -> None:
    user = sorted(histories)[1]
    first = client.get("/recommend", params={"user_id": user, "k": K}).json()["items"][0]
    hidden = client.put(f"/items/{first['item_id']}/availability", json={"hidden": True})
    assert hidden.status_code == 200
    body = client.get("/recommend", params={"user_id": user, "k": K}).json()
    returned = [i["item_id"] for i in body["items"]]
    assert first["item_id"] not in returned
    assert len(returned) == K


def test_the_columnar_catalogue_shows_the_built_attributes(home: Settings) -> None:
    model = load_model(model_dir(home))
    catalogue = load_catalogue(model_dir(home), model)
    items = pd.read_parquet(home.data_dir / "items.parquet").set_index("item_id")
    for item_id in model.item_ids[:20]:
        shown = catalogue.get(item_id)
        assert shown.categories == [items.loc[item_id, "category"]]
        assert shown.price == pytest.approx(items.loc[item_id, "price"])
        assert shown.title == " ".join(items.loc[item_id, "title"])
    assert catalogue.get("no-such-item").title == "no-such-item"


def test_an_add_to_cart_answers_related_items_from_the_neighbour_lists(
    client: TestClient, histories: dict[str, set[str]]
) -> None:
    user = sorted(histories)[-1]
    carted = sorted(histories[user])[0]
    event = {
        "event_id": f"two-stage-cart-{time.time_ns()}",
        "user_id": user,
        "item_id": carted,
        "type": "add_to_cart",
        "timestamp": time.time(),
    }
    response = client.post(
        "/events",
        json={"events": [event], "return_recommendations": True, "recommendations_k": 4},
    )
    assert response.status_code == 200
    [answer] = response.json()["recommendations"]
    returned = {i["item_id"] for i in answer["items"]}
    assert returned
    assert not returned & (histories[user] | {carted})


def test_explanations_are_declined_cleanly(
    client: TestClient, histories: dict[str, set[str]]
) -> None:
    user = next(iter(histories))
    response = client.get("/recommend", params={"user_id": user, "k": 3, "explain": "true"})
    assert response.status_code == 200
    body = response.json()
    assert len(body["items"]) == 3
    assert "no explanation outputs" in body["explanation_unavailable"]


def test_similar_items_come_from_the_neighbour_lists(client: TestClient, home: Settings) -> None:
    model = load_model(model_dir(home))
    assert model.neighbours is not None
    row = int(np.argmax((model.neighbours.indices >= 0).sum(axis=1)))
    item = model.item_ids[row]
    body = client.get(f"/items/{item}/similar", params={"k": 3}).json()
    assert len(body["items"]) == 3
    assert item not in {i["item_id"] for i in body["items"]}


def test_large_arrays_are_shared_read_only_memory_maps(home: Settings) -> None:
    model = load_model(model_dir(home))
    assert model.ranker is not None
    arrays = model.ranker.arrays
    for array in (arrays.item_vectors, arrays.popularity, arrays.neighbours):
        assert isinstance(array, np.memmap)
        assert not array.flags.writeable
    # The ANN index too is a file mapping of this process, not a private copy.
    maps = Path("/proc/self/maps").read_text()
    directory = model_dir(home)
    assert str(directory / ANN_INDEX_FILE) in maps
    assert str(directory / ITEM_VECTORS_FILE) in maps


def test_hot_reload_swaps_in_a_rebuilt_two_stage_model(
    client: TestClient, home: Settings, histories: dict[str, set[str]]
) -> None:
    from app.training.pipeline import build

    before = client.get("/recommend", params={"user_id": "nobody", "k": 1}).json()
    build(home, home.home.parent / "source" / "shop")
    reloaded = client.post("/admin/models/reload").json()
    assert reloaded["outcome"] == "loaded"
    assert reloaded["version"] != before["model_version"]
    user = next(iter(histories))
    body = client.get("/recommend", params={"user_id": user, "k": K}).json()
    assert body["model_version"] == reloaded["version"]
    assert body["source"] == "personalized"
