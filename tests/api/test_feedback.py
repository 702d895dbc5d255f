"""``POST /feedback`` through a real server (``recserve serve`` over HTTP): "not interested"
leaves the item or the category out of the very next lists, feedback is counted, refused with
the field named, and erased with the user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from app.settings import Settings
from tests.integration.conftest import TWO_SLOTS, metric, serve, users_with_history

pytestmark = pytest.mark.integration

SECRET = "do-not-echo-this-value"
LIST_ID = "recommendation_id"


@pytest.fixture(scope="module")
def http(home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    slots = tmp_path_factory.mktemp("slots") / "slots.toml"
    slots.write_text(TWO_SLOTS)
    with serve(home.home, extra_env={"RECSERVE_CONTENT_SLOTS_FILE": str(slots)}) as client:
        yield client


@pytest.fixture(scope="module")
def categories(home: Settings) -> dict[str, str]:
    items = pd.read_parquet(home.data_dir / "items.parquet")
    return dict(zip(items["item_id"].astype(str), items["category"].astype(str), strict=True))


def recommended(http: httpx.Client, user: str, *, post: bool = False) -> tuple[list[str], object]:
    if post:
        response = http.post("/recommend", json={"user_id": user, "k": 10})
    else:
        response = http.get("/recommend", params={"user_id": user, "k": 10})
    assert response.status_code == 200, response.text
    body = response.json()
    return [item["item_id"] for item in body["items"]], body["cache"]


def block_items(http: httpx.Client, user: str) -> list[str]:
    response = http.get("/content-blocks", params={"slots": "for-you,trending", "user_id": user})
    assert response.status_code == 200, response.text
    return [item["item_id"] for block in response.json()["blocks"] for item in block["items"]]


def feedback(http: httpx.Client, body: dict[str, object]) -> httpx.Response:
    return http.post("/feedback", json=body)


def test_not_interested_in_an_item_leaves_it_out_at_once(
    http: httpx.Client, home: Settings
) -> None:
    user = users_with_history(home)[0]
    first, _ = recommended(http, user)
    assert recommended(http, user)[1] is not None  # the list is cached now
    in_blocks = block_items(http, user)
    unwanted, unwanted_in_block = first[0], in_blocks[-1]

    for item in (unwanted, unwanted_in_block):
        response = feedback(http, {"user_id": user, "kind": "not_interested", "item_id": item})
        assert response.status_code == 200, response.text
        assert response.json()["target"] == "item"

    after, cache = recommended(http, user)
    assert unwanted not in after
    assert cache is None  # computed afresh, not the cached list
    assert len(after) == 10
    assert unwanted not in recommended(http, user, post=True)[0]
    assert {unwanted, unwanted_in_block}.isdisjoint(block_items(http, user))


def test_not_interested_in_a_category_leaves_all_its_items_out(
    http: httpx.Client, home: Settings, categories: dict[str, str]
) -> None:
    user = users_with_history(home)[1]
    before, _ = recommended(http, user)
    category = categories[before[0]]
    response = feedback(http, {"user_id": user, "kind": "not_interested", "category": category})
    assert response.status_code == 200, response.text

    after, _ = recommended(http, user)
    shown = after + recommended(http, user, post=True)[0] + block_items(http, user)
    assert [item for item in shown if categories.get(item) == category] == []
    # Another user still gets the category.
    other = users_with_history(home)[1:]
    assert any(
        categories.get(item) == category for u in other[:20] for item in recommended(http, u)[0]
    )


def test_ratings_are_stored_and_counted(http: httpx.Client, home: Settings) -> None:
    user = users_with_history(home)[2]
    response = http.get("/recommend", params={"user_id": user})
    list_id = response.json()["recommendation_id"]
    before = http.get("/metrics").text
    for body in (
        {"user_id": user, "kind": "rating", "rating": 4, "recommendation_id": list_id},
        {"user_id": user, "kind": "rating", "rating": 1, "item_id": "any-item"},
    ):
        answer = feedback(http, body)
        assert answer.status_code == 200, answer.text
    after = http.get("/metrics").text
    for target in ("list", "item"):
        counted = metric(after, "recserve_feedback_total", kind="rating", target=target)
        assert (
            counted == metric(before, "recserve_feedback_total", kind="rating", target=target) + 1
        )
    assert metric(after, "recserve_feedback_total", kind="not_interested", target="item") >= 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u", "kind": "not_interested"}, "item_id"),
        ({"user_id": "u", "kind": "not_interested", "item_id": SECRET, "category": "c"}, "item_id"),
        (
            {"user_id": "u", "kind": "not_interested", "recommendation_id": SECRET},
            "recommendation_id",
        ),
        ({"user_id": "u", "kind": "not_interested", "item_id": "i", "rating": 3}, "rating"),
        ({"user_id": "u", "kind": "rating", "item_id": SECRET}, "rating"),
        ({"user_id": "u", "kind": "rating", "item_id": "i", "rating": 6}, "rating"),
        ({"user_id": "u", "kind": "rating", "item_id": "i", "rating": 4.5}, "rating"),
        ({"user_id": "u", "kind": "rating", "category": SECRET, "rating": 3}, "category"),
        ({"user_id": "u", "kind": SECRET, "item_id": "i"}, "kind"),
        ({"user_id": "", "kind": "not_interested", "item_id": "i"}, "user_id"),
        ({"user_id": "u", "kind": "not_interested", "item_id": "i", SECRET: 1}, SECRET),
    ],
)
def test_bad_feedback_is_422_naming_the_field_without_echo(
    http: httpx.Client, body: dict[str, object], field: str
) -> None:
    response = feedback(http, body)
    assert response.status_code == 422, response.text
    assert [field] == [entry["loc"][-1] for entry in response.json()["detail"]][:1]
    if field != SECRET:
        assert SECRET not in response.text


def test_erasure_removes_the_feedback(http: httpx.Client, home: Settings) -> None:
    user = users_with_history(home)[3]
    unwanted = recommended(http, user)[0][0]
    feedback(http, {"user_id": user, "kind": "not_interested", "item_id": unwanted})
    feedback(http, {"user_id": user, "kind": "rating", "item_id": unwanted, "rating": 2})
    exported = http.get(f"/users/{user}/export").json()["feedback"]
    assert [(e["kind"], e["target_id"]) for e in exported] == [
        ("not_interested", unwanted),
        ("rating", unwanted),
    ]

    report = http.delete(f"/users/{user}")
    assert report.status_code == 200, report.text
    assert report.json()["feedback_deleted"] == 2
    assert http.get(f"/users/{user}/export").json()["feedback"] == []
    assert Path(home.privacy_dir / "feedback.db").exists()
