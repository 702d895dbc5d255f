"""``--workers 2``: /metrics adds up what every worker counted, whichever worker answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.conftest import metric, reach_every_worker

pytestmark = pytest.mark.integration

REQUESTS = 50


def _get(http: httpx.Client, path: str, params: dict[str, str] | None = None) -> str:
    response = http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.text


def _recommend_count(text: str) -> float:
    return metric(text, "recserve_api_requests_total", endpoint="/recommend", status="200")


def test_metrics_add_up_across_workers(two_worker_server: httpx.Client) -> None:
    # A new connection per request: the kernel hands each accept to whichever worker takes
    # it, where a kept-alive connection would stick to one worker.
    with (
        httpx.Client(
            base_url=two_worker_server.base_url,
            timeout=5.0,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as http,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        before = _recommend_count(_get(http, "/metrics"))
        list(
            pool.map(
                lambda i: _get(http, "/recommend", {"user_id": f"u{i:07d}", "k": "3"}),
                range(REQUESTS),
            )
        )
        # Without this, one worker might have answered everything and any sum would look right.
        reach_every_worker(http, 2)
        scrapes = list(pool.map(lambda _: _get(http, "/metrics"), range(10)))

    assert [_recommend_count(text) - before for text in scrapes] == [REQUESTS] * len(scrapes)
