"""``/admin/rollout`` and ``/ui/rollout`` on the real app: the pointers, the records, the error
shape for an unknown change and for a store that cannot be read."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.artifacts import current_version
from app.settings import Settings


def test_the_status_names_the_champion_and_no_challenger(
    client: TestClient, home: Settings
) -> None:
    body = client.get("/admin/rollout").json()
    assert body["champion"] == current_version(home.model_root)
    assert body["challenger"] is None
    assert body["settings"]["enabled"] is False
    assert body["rollouts"] == []
    page = client.get("/ui/rollout")
    assert page.status_code == 200
    assert 'id="no-rollouts"' in page.text


def test_an_unknown_change_is_a_404_in_the_error_shape(client: TestClient) -> None:
    response = client.get("/admin/rollout/changes/<script>")
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "not_found"
    assert "<script>" not in response.text
    assert client.get("/ui/rollout/changes/absent").status_code == 404


def test_an_unreadable_record_store_is_a_503(client: TestClient, home: Settings) -> None:
    store = home.rollout_dir / "rollout.db"
    store.parent.mkdir(parents=True, exist_ok=True)
    saved = store.read_bytes() if store.exists() else None
    store.write_bytes(b"not a database at all, " * 100)
    try:
        response = client.get("/admin/rollout")
        assert response.status_code == 503
        assert "rollout records" in response.json()["message"]
    finally:
        store.unlink()
        if saved is not None:
            store.write_bytes(saved)
