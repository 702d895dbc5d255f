"""Content blocks, business rules and availability overrides through the real ASGI app on a
model built by the pipeline (real Feast SQLite store, real onnxruntime)."""

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
from app.artifacts import CATALOGUE_FILE, MANIFEST_FILE, current_version
from app.bootstrap import build_engine, close_engine
from app.serving.catalogue.rule_config import RulesConfigError
from app.serving.model.ranking import load_model
from app.settings import AvailabilitySettings, Settings

pytestmark = pytest.mark.integration

SCRIPT_TITLE = '<script>alert("x")</script> & co'
SAFE_IMAGE = "https://cdn.example/a.png?w=1&h=2"
EXCLUDED_CATEGORY = "grocery"


@pytest.fixture(scope="module")
def items(built_home: Settings) -> pd.DataFrame:
    return pd.read_parquet(built_home.data_dir / "items.parquet").set_index("item_id")


@pytest.fixture(scope="module")
def histories(built_home: Settings) -> dict[str, list[str]]:
    inter = pd.read_parquet(built_home.data_dir / "interactions.parquet")
    return {u: list(g) for u, g in inter.groupby("user_id")["item_id"]}


@pytest.fixture(scope="module")
def categories(items: pd.DataFrame) -> tuple[str, str]:
    """(the largest category, a second one to boost); neither is the excluded one."""
    counts = items["category"][items["category"] != EXCLUDED_CATEGORY].value_counts()
    return str(counts.index[0]), str(counts.index[1])


@pytest.fixture(scope="module")
def patched(
    built_home: Settings, categories: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """A private copy of the models whose catalogue gives one item a title with markup and a
    javascript: image, and another a web image: the two most popular in-stock items of the
    boosted category, so both lead the popular list. Returns those ids and the models dir."""
    models = tmp_path_factory.mktemp("cb") / "models"
    shutil.copytree(built_home.model_root, models)
    version = current_version(models)
    assert version is not None
    path = models / version / CATALOGUE_FILE
    entries = {e["item_id"]: e for e in json.loads(path.read_text())}
    popular = json.loads((models / version / "popular.json").read_text())
    chosen = [
        entries[i]
        for i in popular
        if entries[i]["in_stock"] and entries[i]["categories"] == [categories[1]]
    ]
    chosen[0].update(title=SCRIPT_TITLE, image_url="javascript:alert(1)")
    chosen[1].update(image_url=SAFE_IMAGE)
    path.write_text(json.dumps(list(entries.values())))
    return {"models": str(models), "script": chosen[0]["item_id"], "image": chosen[1]["item_id"]}


@pytest.fixture(scope="module")
def settings(
    built_home: Settings,
    patched: dict[str, str],
    categories: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    largest, boosted = categories
    root = tmp_path_factory.mktemp("cb-config")
    slots = root / "slots.toml"
    slots.write_text(
        f"""
[[slots]]
id = "top"
title = "Top picks for you"
k = 8
strategy = "personalized"

[[slots]]
id = "because"
title = "Because you liked {{last_item_title}}"
fallback_title = "Popular right now"
k = 6
strategy = "similar_to_last_item"
max_age_seconds = 30

[[slots]]
id = "popular"
title = "Popular"
k = 12
strategy = "popular"

[[slots]]
id = "cheap-{largest}"
title = "Deals"
k = 5
strategy = "personalized"
fallback_items = ["{patched["script"]}"]
[slots.filters]
categories = ["{largest}"]
price_max = 200.0
"""
    )
    rules = root / "rules.toml"
    rules.write_text(
        f"""
[filters]
exclude_categories = ["{EXCLUDED_CATEGORY}"]

[[boosts]]
category = "{boosted}"
factor = 50
"""
    )
    return built_home.model_copy(
        update={
            "models_dir": Path(patched["models"]),
            "content_slots_file": slots,
            "business_rules_file": rules,
            "availability": AvailabilitySettings(sqlite_path=root / "availability.db"),
            "model_poll_seconds": 0,
        }
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def ids(body: dict[str, object]) -> list[str]:
    return [item["item_id"] for item in body["items"]]  # type: ignore[attr-defined]


def availability_url(item_id: str) -> str:
    return f"/items/{quote(item_id, safe='/')}/availability"


def similar_url(item_id: str) -> str:
    return f"/items/{quote(item_id, safe='/')}/similar"


def test_a_page_of_three_slots_never_repeats_an_item(
    client: TestClient, histories: dict[str, list[str]]
) -> None:
    users = [*sorted(histories)[:40], "never-seen-user"]
    for user_id in users:
        response = client.get(
            "/content-blocks", params={"slots": "top,because,popular", "user_id": user_id}
        )
        assert response.status_code == 200, response.text
        blocks = response.json()["blocks"]
        assert [b["slot"] for b in blocks] == ["top", "because", "popular"]
        assert [len(b["items"]) for b in blocks] == [8, 6, 12], user_id
        shown = [item_id for block in blocks for item_id in ids(block)]
        assert len(shown) == len(set(shown)), user_id
        assert len({b["recommendation_id"] for b in blocks}) == 3


def test_block_items_carry_display_attributes_and_the_title_is_filled(
    client: TestClient, histories: dict[str, list[str]], items: pd.DataFrame
) -> None:
    user_id = sorted(histories)[0]
    body = client.get("/content-blocks/because", params={"user_id": user_id}).json()
    assert body["source"] == "similar_to_last_item"
    assert body["title"].startswith("Because you liked ")
    assert body["experiment_id"] is None
    assert body["variant"] is None
    for item in body["items"]:
        row = items.loc[item["item_id"]]
        assert item["title"] == " ".join(row["title"])
        assert item["categories"] == [row["category"]]
        assert item["price"] == pytest.approx(row["price"])
        assert item["in_stock"] is True
    assert not set(ids(body)) & set(histories[user_id])

    cold = client.get("/content-blocks/because", params={"user_id": "never-seen-user"}).json()
    assert cold["title"] == "Popular right now"
    assert cold["source"] == "popular"


def test_filters_and_business_rules_are_honoured(
    client: TestClient,
    histories: dict[str, list[str]],
    items: pd.DataFrame,
    categories: tuple[str, str],
) -> None:
    largest, _ = categories
    for user_id in sorted(histories)[:30]:
        body = client.get(f"/content-blocks/cheap-{largest}", params={"user_id": user_id}).json()
        assert body["items"], user_id
        for item_id in ids(body):
            assert items.loc[item_id, "category"] == largest
            assert items.loc[item_id, "price"] <= 200.0
            assert items.loc[item_id, "in_stock"] == "1"
    out_of_stock = set(items.index[items["in_stock"] == "0"])
    excluded = set(items.index[items["category"] == EXCLUDED_CATEGORY])
    assert out_of_stock
    assert excluded
    for user_id in [*sorted(histories)[:60], "never-seen-user"]:
        returned = set(ids(client.get("/recommend", params={"user_id": user_id}).json()))
        assert len(returned) == 10
        assert not returned & (out_of_stock | excluded), user_id


def test_a_category_boost_lifts_its_items_to_the_top(
    client: TestClient, items: pd.DataFrame, categories: tuple[str, str]
) -> None:
    _, boosted = categories
    shown = items[(items["category"] == boosted) & (items["in_stock"] == "1")]
    body = client.get("/recommend", params={"user_id": "never-seen-user", "k": 20}).json()
    first = ids(body)[: min(len(shown), 20)]
    assert {items.loc[i, "category"] for i in first} == {boosted}


def test_a_hidden_item_never_appears_anywhere_until_shown_again(
    client: TestClient, histories: dict[str, list[str]], items: pd.DataFrame
) -> None:
    user_id = sorted(histories)[3]
    top = ids(client.get("/recommend", params={"user_id": user_id}).json())[0]
    popular = ids(client.get("/recommend", params={"user_id": "never-seen-user"}).json())[0]
    anchor = str(items.index[0])
    neighbour = ids(client.get(similar_url(anchor)).json())[0]
    hidden = {top, popular, neighbour}
    for item_id in hidden:
        response = client.put(availability_url(item_id), json={"hidden": True})
        assert response.status_code == 200
        assert response.json()["hidden"] is True
        assert response.json()["override"] == {"hidden": True, "in_stock": None}

    for uid in [*sorted(histories)[:40], "never-seen-user"]:
        rec = ids(client.get("/recommend", params={"user_id": uid}).json())
        assert len(rec) == 10
        assert not hidden & set(rec), uid
        page = client.get(
            "/content-blocks", params={"slots": "top,because,popular", "user_id": uid}
        ).json()
        for block in page["blocks"]:
            assert not hidden & set(ids(block)), (uid, block["slot"])
    for item_id in items.index:
        similar = ids(client.get(similar_url(item_id)).json())
        assert len(similar) == 10
        assert not hidden & set(similar), item_id

    for item_id in hidden:  # an empty override reverts to the catalogue
        assert client.put(availability_url(item_id), json={}).json()["hidden"] is False
    assert ids(client.get("/recommend", params={"user_id": user_id}).json())[0] == top
    assert ids(client.get("/recommend", params={"user_id": "never-seen-user"}).json())[0] == popular
    assert ids(client.get(similar_url(anchor)).json())[0] == neighbour


def test_etag_round_trip_gives_304_and_a_change_gives_200(
    client: TestClient, histories: dict[str, list[str]]
) -> None:
    params = {"user_id": sorted(histories)[5]}
    first = client.get("/content-blocks/top", params=params)
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert not etag.startswith("W/")
    assert first.headers["cache-control"] == "private, max-age=60"
    assert "Accept" in first.headers["vary"]
    assert first.headers["x-recommendation-id"] == first.json()["recommendation_id"]

    again = client.get("/content-blocks/top", params=params, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "private, max-age=60"
    weak = client.get("/content-blocks/top", params=params, headers={"If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304

    html = client.get(
        "/content-blocks/top", params=params, headers={"Accept": "text/html", "If-None-Match": etag}
    )
    assert html.status_code == 200
    assert html.headers["etag"] != etag
    assert html.headers["content-type"].startswith("text/html")

    shown = ids(first.json())[0]
    client.put(availability_url(shown), json={"hidden": True})
    try:
        changed = client.get("/content-blocks/top", params=params, headers={"If-None-Match": etag})
        assert changed.status_code == 200
        assert changed.headers["etag"] != etag
        assert shown not in ids(changed.json())
    finally:
        client.put(availability_url(shown), json={})


def test_the_html_fragment_escapes_catalogue_values(
    client: TestClient, patched: dict[str, str]
) -> None:
    response = client.get(
        "/content-blocks",
        params={"slots": "popular", "user_id": "never-seen-user"},
        headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"},
    )
    json_items = client.get(
        "/content-blocks/popular", params={"user_id": "never-seen-user"}
    ).json()["items"]
    assert {patched["script"], patched["image"]} <= {i["item_id"] for i in json_items}
    fragment = response.text
    assert response.headers["cache-control"] == "private, max-age=60"
    assert "<script" not in fragment
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in fragment
    assert "javascript:" not in fragment
    assert 'src="https://cdn.example/a.png?w=1&amp;h=2"' in fragment
    assert fragment.startswith('<section class="recserve-block" data-slot="popular"')
    assert fragment.count("<li ") == 12


def test_unknown_slots_are_404_naming_them_and_bad_lists_422(client: TestClient) -> None:
    response = client.get("/content-blocks/nope", params={"user_id": "u"})
    assert response.status_code == 404
    assert "nope" in response.json()["message"]
    response = client.get("/content-blocks", params={"slots": "top,missing", "user_id": "u"})
    assert response.status_code == 404
    assert "missing" in response.json()["message"]
    response = client.get("/content-blocks", params={"slots": "top,top", "user_id": "u"})
    assert response.status_code == 422
    assert "top" in response.json()["detail"][0]["msg"]
    assert client.get("/content-blocks/top").status_code == 422  # user_id missing


def test_availability_of_unknown_items_and_bad_bodies(client: TestClient) -> None:
    assert client.get(availability_url("no such/item")).status_code == 404
    assert client.put(availability_url("no such/item"), json={"hidden": True}).status_code == 404
    response = client.put(availability_url("sku-000000"), json={"hidden": "maybe"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "hidden"]
    response = client.put(availability_url("sku-000000"), json={"gone": True})
    assert response.status_code == 422


def test_a_bad_slots_file_stops_start_up_with_the_slot_and_field(
    settings: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "slots.toml"
    bad.write_text(
        '[[slots]]\nid = "hero"\ntitle = "Hi {user.__class__}"\nk = 0\nstrategy = "magic"\n'
    )
    app = create_app(settings.model_copy(update={"content_slots_file": bad}))
    with pytest.raises(RulesConfigError) as error, TestClient(app):
        pass
    message = str(error.value)
    assert str(bad) in message
    assert "slots[hero].title: unsupported placeholder {user.__class__}" in message
    assert "slots[hero].k:" in message
    assert "slots[hero].strategy:" in message


async def test_a_hot_reloaded_model_brings_its_catalogue(
    settings: Settings, patched: dict[str, str]
) -> None:
    root = settings.model_root
    old = current_version(root)
    assert old is not None
    new = root / f"{old}-next"
    shutil.copytree(root / old, new)
    manifest = json.loads((new / MANIFEST_FILE).read_text())
    (new / MANIFEST_FILE).write_text(json.dumps({**manifest, "version": new.name}))
    entries = json.loads((new / CATALOGUE_FILE).read_text())
    for entry in entries:
        entry["title"] = f"renamed {entry['item_id']}"
    (new / CATALOGUE_FILE).write_text(json.dumps(entries))

    engine = await build_engine(settings)
    try:
        rules = engine.rules
        assert rules is not None
        assert rules.display(patched["script"]).title == SCRIPT_TITLE
        engine.replace_model(load_model(new))
        assert rules.display(patched["script"]).title == f"renamed {patched['script']}"
    finally:
        await close_engine(engine)
        shutil.rmtree(new)
