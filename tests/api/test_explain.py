"""``explain=true`` on ``/recommend``: every reason given must be true of the real model.

Real ASGI app, real Feast (SQLite), real onnxruntime model of the built synthetic shop.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import onnx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.artifacts import MODEL_FILE, OUTPUT_SCORES, current_version
from app.features.schema import UserFeatures
from app.serving.surfaces.explain import explain_items
from app.serving.types import RecommendRequest, ScoredItem
from app.settings import Settings
from tests.integration.conftest import copy_home, users_with_history

pytestmark = pytest.mark.integration

SOURCES = {"item_similarity", "next_items", "transitions", "demographic", "popularity"}
USERS = 12


@pytest.fixture(scope="module")
def client(built_home: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(built_home)) as test_client:
        yield test_client


def online(client: TestClient, user_id: str) -> UserFeatures:
    """The features the model reads for the user, from the app's own online store."""
    user = client.app.state.services.engine.features.get_user(user_id)  # type: ignore[attr-defined]
    assert user is not None, user_id
    return user


def explained(client: TestClient, user_id: str, k: int = 10) -> dict[str, Any]:
    response = client.get("/recommend", params={"user_id": user_id, "k": k, "explain": "true"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["explanation_unavailable"] is None
    assert all(item["explanation"] is not None for item in body["items"])
    return body


@pytest.fixture(scope="module")
def answers(client: TestClient, built_home: Settings) -> dict[str, dict[str, Any]]:
    return {u: explained(client, u) for u in users_with_history(built_home)[:USERS]}


def test_contributions_add_up_to_the_score_and_ranks_back_proposed_by(
    answers: dict[str, dict[str, Any]],
) -> None:
    proposed = 0
    for body in answers.values():
        assert body["source"] == "personalized"
        for item in body["items"]:
            why = item["explanation"]
            contributions = {s["source"]: s["contribution"] for s in why["sources"]}
            assert set(contributions) == SOURCES
            assert why["model_score"] == pytest.approx(item["score"], abs=1e-5)
            assert sum(contributions.values()) == pytest.approx(why["model_score"], abs=1e-5)
            expected = [
                s["source"] for s in why["sources"] if s["rank"] <= 10 and s["contribution"] > 0
            ]
            assert why["proposed_by"] == expected
            assert all(s["rank"] >= 1 for s in why["sources"])
            proposed += bool(expected)
    assert proposed > 0, "some item should be in some source's own top 10"


def test_because_you_viewed_names_history_items_the_item_is_similar_to(
    client: TestClient, answers: dict[str, dict[str, Any]]
) -> None:
    model = client.app.state.services.engine.model  # type: ignore[attr-defined]
    with_reason = listed_as_neighbour = total = 0
    for user_id, body in answers.items():
        history = set(online(client, user_id).history_items)
        for item in body["items"]:
            total += 1
            related = item["explanation"]["because_you_viewed"]
            with_reason += bool(related)
            contributions = [r["contribution"] for r in related]
            assert contributions == sorted(contributions, reverse=True)
            for reason in related:
                assert reason["item_id"] in history
                assert reason["contribution"] > 0
                if reason["neighbour_rank"] is not None:
                    # The index behind /items/{id}/similar (which also applies business rules).
                    row = model.neighbours.indices[model.item_index[reason["item_id"]]]
                    listed = model.item_ids[row[reason["neighbour_rank"] - 1]]
                    assert listed == item["item_id"]
                    listed_as_neighbour += 1
    assert with_reason >= total // 2
    assert listed_as_neighbour > 0


def test_top_features_are_the_users_own_values_largest_first(
    client: TestClient, answers: dict[str, dict[str, Any]]
) -> None:
    for user_id, body in answers.items():
        user = online(client, user_id)
        for item in body["items"]:
            features = item["explanation"]["features"]
            assert 0 < len(features) <= 5
            sizes = [abs(f["contribution"]) for f in features]
            assert sizes == sorted(sizes, reverse=True)
            for feature in features:
                values = {
                    "history_items": user.history_items,
                    "attribute_tokens": user.attribute_tokens,
                }[feature["feature"]]
                assert feature["value"] in values
                assert feature["source"] in SOURCES


def test_breakdown_matches_the_scoring_graph_and_ranks_order_every_candidate(
    client: TestClient, built_home: Settings
) -> None:
    model = client.app.state.services.engine.model  # type: ignore[attr-defined]
    user = online(client, users_with_history(built_home)[0])
    history = model.item_indices(user.history_items)
    scores = model.score(history, [t for t in user.attribute_tokens if t in model.token_index])
    seen = set(user.history_items)
    candidates = [ScoredItem(i, 0.0) for i in model.item_ids if i not in seen]
    request = RecommendRequest(user_id=user.user_id, k=10)
    explanations = explain_items(model, user, request, candidates)
    for why in explanations:
        assert why.model_score == pytest.approx(
            float(scores[model.item_index[why.item_id]]), abs=1e-5
        )
    for source in SOURCES:
        pairs = sorted(
            (
                (s.contribution, s.rank)
                for why in explanations
                for s in why.sources
                if s.source == source
            ),
            reverse=True,
        )
        assert pairs[0][1] == 1
        for (high, high_rank), (low, low_rank) in itertools.pairwise(pairs):
            if high > low + 1e-5:
                assert high_rank < low_rank, source


def test_explained_answers_neither_read_nor_fill_the_cache(
    client: TestClient, built_home: Settings
) -> None:
    warm, cold = users_with_history(built_home)[-2:]
    client.get("/recommend", params={"user_id": warm})
    assert client.get("/recommend", params={"user_id": warm}).json()["cache"] == "local"
    assert explained(client, warm)["cache"] is None
    assert explained(client, cold)["cache"] is None
    assert client.get("/recommend", params={"user_id": cold}).json()["cache"] is None
    assert client.get("/recommend", params={"user_id": cold}).json()["cache"] == "local"


def test_plain_answers_carry_no_explanation_and_post_takes_the_flag(
    client: TestClient, built_home: Settings
) -> None:
    user_id = users_with_history(built_home)[1]
    plain = client.get("/recommend", params={"user_id": user_id, "k": 3}).json()
    assert "explanation_unavailable" not in plain
    assert all("explanation" not in item for item in plain["items"])
    body = client.post("/recommend", json={"user_id": user_id, "k": 3, "explain": True}).json()
    assert [i["item_id"] for i in body["items"]] == [i["item_id"] for i in plain["items"]]
    assert all(i["explanation"]["because_you_viewed"] for i in body["items"])
    bad = client.post("/recommend", json={"user_id": user_id, "explain": "maybe"})
    assert bad.status_code == 422
    assert ["body", "explain"] in [e["loc"] for e in bad.json()["detail"]]


def test_cold_start_items_are_explained_by_attributes_alone(
    client: TestClient, built_home: Settings
) -> None:
    users = pd.read_parquet(built_home.data_dir / "users.parquet")["user_id"]
    with_history = set(users_with_history(built_home))
    cold = next(u for u in users if u not in with_history)
    body = explained(client, cold, k=5)
    assert body["source"] == "cold_start"
    for item in body["items"]:
        why = item["explanation"]
        assert why["because_you_viewed"] == []
        assert {f["feature"] for f in why["features"]} == {"attribute_tokens"}
        by_source = {s["source"]: s["contribution"] for s in why["sources"]}
        assert by_source["item_similarity"] == by_source["transitions"] == 0


def test_popular_fallback_items_say_so(client: TestClient) -> None:
    body = explained(client, "nobody-we-know", k=4)
    assert body["fallback_reason"] == "unknown_user"
    for item in body["items"]:
        assert item["explanation"]["proposed_by"] == ["popular_list"]
        assert item["explanation"]["model_score"] is None


def _without_explain_outputs(graph: onnx.ModelProto) -> None:
    kept = [o for o in graph.graph.output if o.name == OUTPUT_SCORES]
    del graph.graph.output[:]
    graph.graph.output.extend(kept)


def _with_an_unknown_term(graph: onnx.ModelProto) -> None:
    """Like a graph exported before the next-items term was folded into item similarity:
    outputs of a term the explanation does not know."""
    graph.graph.output.append(onnx.helper.make_tensor_value_info("ease_sum", 1, None))


@pytest.mark.parametrize("make_older", [_without_explain_outputs, _with_an_unknown_term])
def test_a_model_exported_before_explanations_answers_and_says_why(
    built_home: Settings, tmp_path: Path, make_older: Callable[[onnx.ModelProto], None]
) -> None:
    settings = copy_home(built_home, tmp_path / "home")
    path = settings.model_root / str(current_version(settings.model_root)) / MODEL_FILE
    graph = onnx.load(str(path))
    make_older(graph)
    onnx.save(graph, str(path))
    user_id = users_with_history(built_home)[0]
    with TestClient(create_app(settings)) as old:
        response = old.get("/recommend", params={"user_id": user_id, "explain": "true"})
    body = response.json()
    assert response.status_code == 200
    assert body["source"] == "personalized"
    assert len(body["items"]) == 10
    assert "no explanation outputs" in body["explanation_unavailable"]


def test_explained_answers_are_capped_in_k(client: TestClient, built_home: Settings) -> None:
    user_id = users_with_history(built_home)[0]
    limit = built_home.api.max_explain_k
    over = client.get("/recommend", params={"user_id": user_id, "k": limit + 1, "explain": "true"})
    assert over.status_code == 422
    assert over.json()["detail"][0]["loc"] == ["query", "k"]
    posted = client.post("/recommend", json={"user_id": user_id, "k": limit + 1, "explain": True})
    assert posted.status_code == 422
    assert posted.json()["detail"][0]["loc"] == ["body", "k"]
    plain = client.get("/recommend", params={"user_id": user_id, "k": limit + 1})
    assert len(plain.json()["items"]) == limit + 1
    assert len(explained(client, user_id, k=limit)["items"]) == limit
