"""``/recommend`` filters and display fields, the same on GET and POST, and ``/items/{id}``.

An unknown query parameter is a 422 naming it, as an unknown body field is."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from tests.integration.conftest import users_with_history

pytestmark = pytest.mark.integration

ALL_FIELDS = "title,categories,price,image_url,in_stock"


@pytest.fixture(scope="module")
def user(built_home: Settings) -> str:
    return users_with_history(built_home)[3]


def _get(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/recommend", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _post(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/recommend", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_display_fields_come_on_request_on_get_and_post(client: TestClient, user: str) -> None:
    plain = _get(client, user_id=user, k=5)
    assert all(item.keys() == {"item_id", "score"} for item in plain["items"])

    shown = _get(client, user_id=user, k=5, fields="title,price")
    posted = _post(client, user_id=user, k=5, fields=["title", "price"])
    for body in (shown, posted):
        assert [i["item_id"] for i in body["items"]] == [i["item_id"] for i in plain["items"]]
        for item in body["items"]:
            assert item.keys() == {"item_id", "score", "title", "price"}
            details = client.get(f"/items/{item['item_id']}").json()
            assert (item["title"], item["price"]) == (details["title"], details["price"])
            assert item["title"] != item["item_id"]  # the catalogue's title, not the id

    repeated = client.get(
        "/recommend", params=[("user_id", user), ("fields", "title"), ("fields", "in_stock")]
    ).json()
    assert all(item["in_stock"] is True for item in repeated["items"])


def test_filters_narrow_the_list_on_get_and_post_alike(client: TestClient, user: str) -> None:
    unfiltered = _get(client, user_id=user, k=20, fields=ALL_FIELDS)
    category = Counter(c for i in unfiltered["items"] for c in i["categories"]).most_common()[0][0]
    prices = sorted(i["price"] for i in unfiltered["items"])
    low, high = prices[len(prices) // 4], prices[3 * len(prices) // 4]

    by_get = _get(client, user_id=user, k=10, category=category, fields="categories")
    by_post = _post(client, user_id=user, k=10, category=[category], fields=["categories"])
    assert by_get["items"] == by_post["items"]
    assert by_get["items"]
    assert all(category in item["categories"] for item in by_get["items"])

    priced = _get(client, user_id=user, k=10, price_min=low, price_max=high, fields="price")
    assert priced["items"]
    assert all(low <= item["price"] <= high for item in priced["items"])
    assert (
        priced["items"]
        == _post(client, user_id=user, k=10, price_min=low, price_max=high, fields=["price"])[
            "items"
        ]
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"fields": "title,weight"}, "fields"),
        ({"price_min": "5", "price_max": "2"}, None),
        ({"price_min": "-1"}, "price_min"),
        ({"price_max": "inf"}, "price_max"),
    ],
)
def test_bad_list_options_are_422_naming_them_on_get_and_post(
    client: TestClient, user: str, params: dict[str, str], field: str | None
) -> None:
    got = client.get("/recommend", params={"user_id": user, **params})
    body: dict[str, Any] = {"user_id": user, **params}
    if "fields" in params:
        body["fields"] = params["fields"].split(",")
    posted = client.post("/recommend", json=body)
    for response in (got, posted):
        assert response.status_code == 422, response.text
        error = response.json()["detail"][0]
        if field is None:
            assert "price_min 5.0 is above price_max 2.0" in error["msg"]
        else:
            assert field in error["loc"], error
            assert field in response.json()["message"]


def test_an_item_is_shown_by_id_and_its_sub_routes_still_answer(client: TestClient) -> None:
    item_id = _get(client, user_id="u-anyone", k=1)["items"][0]["item_id"]
    details = client.get(f"/items/{item_id}")
    assert details.status_code == 200
    assert details.json().keys() == {
        "item_id",
        "title",
        "categories",
        "price",
        "in_stock",
        "hidden",
        "image_url",
    }
    assert details.json()["item_id"] == item_id
    assert client.get(f"/items/{item_id}/similar").json()["item_id"] == item_id
    assert client.get(f"/items/{item_id}/availability").json()["item_id"] == item_id
    missing = client.get("/items/no-such-item")
    assert missing.status_code == 404
    assert "no-such-item" in missing.json()["message"]
