"""The ``/ui`` operator console through the real ASGI app: what each page shows, and that
everything shown is escaped. The same pages in a real browser: tests/integration/test_ui_browser.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.artifacts import DRIFT_REFERENCE_FILE
from app.settings import Settings
from tests.api.experiment_support import (
    experiment_client,
    feedback,
    post_events,
    two_arm_experiment,
)
from tests.integration.conftest import copy_home, users_with_history

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(built_home: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(built_home)) as test_client:
        yield test_client


def cells(html: str, css_class: str) -> list[str]:
    """The text of the ``<td class="css_class">`` cells, tags stripped."""
    found = re.findall(rf'<td class="{css_class}">(.*?)</td>', html, flags=re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in found]


def test_overview_shows_the_served_model_readiness_and_fallbacks(client: TestClient) -> None:
    client.get("/recommend", params={"user_id": "someone-unknown"})
    page = client.get("/ui")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    version = client.get("/readyz").json()["model_version"]
    assert f'<td id="served-version">{version}</td>' in page.text
    assert "<td>feature_store</td>" in page.text
    assert "<td>unknown_user</td>" in page.text


def test_user_lookup_shows_profile_and_the_explained_recommendations(
    client: TestClient, built_home: Settings
) -> None:
    user_id = users_with_history(built_home)[0]
    page = client.get("/ui/users", params={"user_id": user_id, "k": 5})
    assert page.status_code == 200
    api = client.get("/recommend", params={"user_id": user_id, "k": 5, "explain": "true"}).json()
    assert cells(page.text, "item-id") == [i["item_id"] for i in api["items"]]
    shown_because = cells(page.text, "because")
    for item, because in zip(api["items"], shown_because, strict=True):
        for reason in item["explanation"]["because_you_viewed"]:
            assert reason["item_id"] in because
    profile = client.get(f"/users/{user_id}/profile").json()
    assert profile["behaviour"]["recent_items"][0] in page.text
    assert 'id="profile"' in page.text
    titled = client.get("/recommend", params={"user_id": user_id, "k": 5, "fields": "title"})
    assert cells(page.text, "item-title") == [i["title"] for i in titled.json()["items"]]


def test_user_page_offers_example_ids_that_have_a_history(
    client: TestClient, built_home: Settings
) -> None:
    page = client.get("/ui/users").text
    examples = re.findall(r'href="/ui/users\?user_id=([^"]+)"', page)
    assert examples
    assert set(examples) <= set(users_with_history(built_home))


def test_unknown_users_and_odd_ids_are_shown_escaped(client: TestClient) -> None:
    hostile = '<script>alert("x")</script>&'
    page = client.get("/ui/users", params={"user_id": hostile})
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;" in page.text
    assert 'id="profile-missing"' in page.text
    assert "popular_list" in page.text


def test_user_form_rejects_a_bad_k(client: TestClient) -> None:
    response = client.get("/ui/users", params={"user_id": "u", "k": 0})
    assert response.status_code == 422


def test_models_page_lists_versions_with_metrics_and_the_evaluation(
    built_home: Settings, tmp_path: Path
) -> None:
    settings = copy_home(built_home, tmp_path / "home")
    report = {
        "dataset": "shop",
        "notes": ["no user file: <every> user is without attributes"],
        "results": [
            {
                "protocol": "warm",
                "test_users": 7,
                "methods": [
                    {
                        "name": "hybrid <onnx>",
                        "ndcg": 0.25,
                        "recall": 0.5,
                        "hit_rate": 0.75,
                        "coverage": 0.125,
                        "long_tail_share": 0.0625,
                    }
                ],
            }
        ],
    }
    (settings.home / "evaluation").mkdir()
    (settings.home / "evaluation" / "evaluation.json").write_text(json.dumps(report))
    with TestClient(create_app(settings)) as client:
        page = client.get("/ui/models").text
        version = client.get("/readyz").json()["model_version"]
    assert f"<code>{version}</code>" in page
    assert '<span class="pill">served</span><span class="pill">CURRENT</span>' in page
    manifest = json.loads((settings.model_root / version / "manifest.json").read_text())
    for name, value in manifest["offline_metrics"].items():
        label = name.removeprefix("validation_").replace("_", " ")
        assert f'<th title="{name}">{label}</th>' in page
        if float(value).is_integer():  # a count (tuning trials) reads as one
            assert f'<td class="num">{int(value):,}</td>' in page
    assert 'class="scroll"' in page  # a wide table scrolls instead of overflowing the page
    assert "hybrid &lt;onnx&gt;" in page
    assert "0.0625" in page
    assert "Data note: no user file: &lt;every&gt; user is without attributes" in page


def test_experiments_pages_list_and_compare_variants(built_home: Settings, tmp_path: Path) -> None:
    with experiment_client(built_home, tmp_path, two_arm_experiment("ui-test", "web")) as client:
        for user in users_with_history(built_home)[:20]:
            client.get("/recommend", params={"user_id": user, "device": "web"})
        listing = client.get("/ui/experiments").text
        report = client.get("/ui/experiments/ui-test")
        missing = client.get("/ui/experiments/nope")
    assert '<a href="/ui/experiments/ui-test">ui-test</a>' in listing
    assert report.status_code == 200
    assert sum(int(n) for n in cells(report.text, "num exposures")) == 20
    assert "treatment" in report.text
    assert missing.status_code == 404
    assert "unknown experiment" in missing.text


def test_user_lookup_shows_consent_in_force(built_home: Settings, tmp_path: Path) -> None:
    settings = copy_home(built_home, tmp_path / "home")  # consent is stored in the home
    user_id = users_with_history(built_home)[2]
    with TestClient(create_app(settings)) as client:
        put = client.put(f"/users/{user_id}/consent", json={"personalization": False})
        assert put.status_code == 200, put.text
        page = client.get("/ui/users", params={"user_id": user_id}).text
    consent = page[page.index('id="consent"') : page.index("</table>", page.index('id="consent"'))]
    rows = {
        re.sub(r"<[^>]+>", "", row.split("</td>")[0]).strip(): re.sub(r"<[^>]+>", "", row)
        for row in consent.split("<tr>")[2:]
    }
    assert "refused" in rows["personalization"]
    assert "default" not in rows["personalization"]
    assert "(default: never chosen)" in rows["tracking"]


def test_a_console_lookup_shows_the_variant_but_records_no_exposure(
    built_home: Settings, tmp_path: Path
) -> None:
    """The console previews the list the API would serve; only served lists are exposures."""
    untargeted = two_arm_experiment("ui-preview", "web").replace(
        'targeting = { devices = ["web"] }\n', ""
    )
    users = users_with_history(built_home)[:6]
    with experiment_client(built_home, tmp_path, untargeted) as client:
        pages = [client.get("/ui/users", params={"user_id": user}).text for user in users]
        for user in users[:2]:
            client.get("/recommend", params={"user_id": user})
        report = client.get("/ui/experiments/ui-preview").text
    assert all("ui-preview" in page for page in pages)  # each lookup names the variant
    assert sum(int(n) for n in cells(report, "num exposures")) == 2


def monitored_client(built_home: Settings, directory: Path) -> TestClient:
    """The app on a copy of the built home with the charts sampled every 50 ms and every
    answer recorded for online quality."""
    settings = copy_home(built_home, directory / "home")
    monitoring = settings.monitoring.model_copy(
        update={"chart_sample_seconds": 0.05, "online_quality_share": 1.0}
    )
    return TestClient(create_app(settings.model_copy(update={"monitoring": monitoring})))


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_monitoring_page_charts_answers_and_shows_online_quality_by_version(
    built_home: Settings, tmp_path: Path
) -> None:
    user = users_with_history(built_home)[0]
    with monitored_client(built_home, tmp_path) as client:
        # The second and third answers come from the cache, with the same labels.
        answers = [
            client.get("/recommend", params={"user_id": user, "k": 3, "device": "mobile"}).json()
            for _ in range(3)
        ]
        wait_for(lambda: len(cells(client.get("/ui/monitoring").text, "num answers")) > 0)
        first = answers[0]
        shown = [
            feedback("impression", user, i["item_id"], first["recommendation_id"])
            for i in first["items"]
        ]
        clicked = feedback("click", user, first["items"][0]["item_id"], first["recommendation_id"])
        post_events(client, [*shown, clicked])
        wait_for(
            lambda: (
                'data-name="' + first["model_version"] + '"' in client.get("/ui/monitoring").text
            )
        )
        page = client.get("/ui/monitoring").text
    assert 'data-name="personalized"' in page  # answers by source over time
    row = next(r for r in page.split('<tr class="quality-row">')[1:] if "<td>mobile</td>" in r)
    assert f"<td>{first['model_version']}</td><td>personalized</td>" in row
    assert cells(row, "num answers") == ["3"]
    assert cells(row, "num impressions") == ["3"]
    assert cells(row, "num clicks") == ["1"]
    assert "33.3%" in row  # one click of three impressions, with its interval after it


def test_experiment_report_charts_each_variants_ctr_with_its_interval(
    built_home: Settings, tmp_path: Path
) -> None:
    users = users_with_history(built_home)[:10]
    with experiment_client(built_home, tmp_path, two_arm_experiment("ui-ci", "web")) as client:
        events = []
        for user in users:
            body = client.get("/recommend", params={"user_id": user, "device": "web"}).json()
            items = [i["item_id"] for i in body["items"]]
            rid = body["recommendation_id"]
            events += [feedback("impression", user, item, rid) for item in items]
            events.append(feedback("click", user, items[0], rid))
        post_events(client, events)
        report = client.get("/ui/experiments/ui-ci").text
    chart = report[report.index('<figure id="ctr-intervals">') :]
    labels = re.findall(r'<g class="interval" data-label="([^"]+)"', chart)
    assert sorted(labels) == ["control", "treatment"]
    assert "<line" in chart
    assert "<circle" in chart


def test_drift_page_plots_reference_against_live_and_says_when_there_is_no_reference(
    built_home: Settings, tmp_path: Path
) -> None:
    settings = copy_home(built_home, tmp_path / "home")
    with TestClient(create_app(settings)) as client:
        page = client.get("/ui/drift").text
        version = client.get("/readyz").json()["model_version"]
    for feature in ("user_activity", "item_popularity", "item_category", "unknown_items"):
        figure = page[page.index(f'<figure id="hist-{feature}">') :]
        assert '<rect class="reference"' in figure.split("</figure>")[0]
    assert "too_few" in page  # a fresh home's log holds fewer events than a verdict needs
    (settings.model_root / version / DRIFT_REFERENCE_FILE).unlink()
    with TestClient(create_app(settings)) as client:
        assert 'id="no-reference"' in client.get("/ui/drift").text
