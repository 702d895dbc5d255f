"""``/docs`` and ``/redoc`` work without internet: every script, style and icon they load is
served by the API itself."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_nothing_from_another_host(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html), html
    loaded = [next(filter(None, groups)) for groups in ASSET.findall(html)]
    assert any(url.endswith(".js") for url in loaded), loaded
    for url in loaded:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url
    assert "/openapi.json" in html
