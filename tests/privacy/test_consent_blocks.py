"""Content blocks honour personalisation consent: the check lives in the engine both use."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.api.main import create_app
from app.settings import Settings

pytestmark = pytest.mark.integration

SLOTS = """
[[slots]]
id = "top"
title = "Top picks for you"
k = 6
strategy = "personalized"

[[slots]]
id = "because"
title = "Because you liked {last_item_title}"
fallback_title = "Popular right now"
k = 6
strategy = "similar_to_last_item"
"""


@pytest.fixture(scope="module")
def client(built_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("consent-blocks")
    shutil.copytree(built_home.home, root / "home")
    (root / "slots.toml").write_text(SLOTS)
    settings = Settings(home=root / "home", content_slots_file=root / "slots.toml")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_blocks_of_a_user_without_personalization_consent_read_no_profile(
    client: TestClient, built_home: Settings
) -> None:
    interactions = pd.read_parquet(built_home.data_dir / "interactions.parquet")
    user = str(sorted(interactions["user_id"].unique())[0])
    params = {"slots": "top,because", "user_id": user}
    before = client.get("/content-blocks", params=params).json()["blocks"]
    assert before[0]["source"] == "personalized"
    assert before[1]["title"] != "Popular right now"  # built from the user's last item
    client.put(f"/users/{user}/consent", json={"personalization": False})
    reads = REGISTRY.get_sample_value("recserve_features_fetch_seconds_count")

    after = client.get("/content-blocks", params=params).json()["blocks"]

    assert after[0]["source"] == "popular"
    assert after[1]["title"] == "Popular right now"
    assert all(block["items"] for block in after)
    assert REGISTRY.get_sample_value("recserve_features_fetch_seconds_count") == reads
