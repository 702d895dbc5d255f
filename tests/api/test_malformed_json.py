"""JSON that Python reads but the API cannot represent (NaN, Infinity, lone surrogates, numbers
beyond a double): 422 naming the field, or in an event batch a rejection of that event alone,
never a 5xx. Real ASGI app, real SQLite event log, on a copy of the built home."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.settings import Settings
from tests.api.test_events import _logged

pytestmark = pytest.mark.integration

JSON = {"content-type": "application/json"}
HUGE = "1" + "0" * 400


@pytest.fixture(scope="module")
def home_copy(built_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    target = tmp_path_factory.mktemp("malformed-json") / "home"
    shutil.copytree(built_home.home, target)
    return Settings(home=target)


@pytest.fixture(scope="module")
def client(home_copy: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(home_copy), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "body",
    [
        '{"user_id": "u1", "k": NaN}',
        '{"user_id": "u1", "k": Infinity}',
        '{"user_id": "u1", "k": -Infinity}',
        '{"user_id": "u1", "context": {"x": NaN}}',
    ],
)
def test_constants_that_are_not_json_are_422(client: TestClient, body: str) -> None:
    response = client.post("/recommend", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert "u1" not in response.text  # nothing of the body echoed


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"user_id": "\\ud800"}', "user_id"),
        ('{"user_id": "u1\\udfffx"}', "user_id"),
        ('{"user_id": "u1", "k": 1e999}', "k"),
        ('{"user_id": "u1", "k": ' + HUGE + "}", "k"),
        ('{"user_id": "u1", "k": ' + "9" * 5000 + "}", "k"),
        ('{"user_id": "u1", "exclude": ["\\udc00"]}', "exclude"),
    ],
)
def test_unrepresentable_values_are_422_naming_the_field(
    client: TestClient, body: str, field: str
) -> None:
    response = client.post("/recommend", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert field in {str(part) for error in response.json()["detail"] for part in error["loc"]}


def test_an_unrepresentable_key_or_free_form_value_never_fails_the_answer(
    client: TestClient,
) -> None:
    extra_key = client.post("/recommend", content='{"user_id": "u1", "\\ud800": 1}', headers=JSON)
    assert extra_key.status_code == 422, extra_key.text
    context = client.post(
        "/recommend", content='{"user_id": "u1", "context": {"device": "\\ud800"}}', headers=JSON
    )
    assert context.status_code == 200, context.text
    consent = client.put("/users/u1/consent", content='{"tracking": NaN}', headers=JSON)
    assert consent.status_code == 422, consent.text


def _event(event_id: str, timestamp: str | None = None, **fields: str) -> str:
    parts = {
        "event_id": f'"{event_id}"',
        "user_id": '"json-user"',
        "item_id": '"sku-000003"',
        "type": '"view"',
        "timestamp": timestamp or str(time.time()),
        **fields,
    }
    return "{" + ", ".join(f'"{k}": {v}' for k, v in parts.items()) + "}"


def test_a_batch_rejects_only_its_unrepresentable_events_and_acknowledges_what_it_stored(
    client: TestClient, home_copy: Settings
) -> None:
    batch = [
        _event("json-ok-1"),
        _event("json-huge-time", timestamp=HUGE),
        _event("\\udfffx"),
        _event("json-inf-value", value="1e999"),
        _event("json-bad-context", context='{"page": "\\ud800"}'),
        _event("json-ok-2"),
    ]
    body = '{"events": [' + ", ".join(batch) + "]}"

    first = client.post("/events", content=body, headers=JSON)

    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["accepted"] == ["json-ok-1", "json-ok-2"]
    rejected = {r["index"]: r for r in answer["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4]
    assert rejected[1]["reason"].startswith("timestamp:")
    assert (rejected[2]["event_id"], rejected[2]["reason"].split(":")[0]) == (None, "event_id")
    assert rejected[3]["reason"].startswith("value:")
    assert rejected[4]["reason"].startswith("context:")
    stored = {logged.event.event_id for logged in _logged(home_copy)}
    assert {"json-ok-1", "json-ok-2"} <= stored
    assert not {"json-huge-time", "json-inf-value", "json-bad-context"} & stored

    retried = client.post("/events", content=body, headers=JSON)

    assert retried.status_code == 200, retried.text
    assert retried.json()["duplicates"] == ["json-ok-1", "json-ok-2"]
    assert retried.json()["rejected_count"] == 4


def test_a_batch_with_nan_anywhere_is_422_and_stores_nothing(
    client: TestClient, home_copy: Settings
) -> None:
    body = '{"events": [' + _event("json-nan-ok") + ", " + _event("json-nan", value="NaN") + "]}"
    response = client.post("/events", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert "json-nan-ok" not in {logged.event.event_id for logged in _logged(home_copy)}
