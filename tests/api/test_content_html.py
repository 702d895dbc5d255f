"""Content negotiation and ``If-None-Match`` rules of the content-block responses."""

from __future__ import annotations

import pytest

from app.api.content_html import etag_matches, prefers_html


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("", False),
        ("application/json", False),
        ("*/*", False),
        ("text/html", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("application/json, text/html;q=0.5", False),
        ("text/html;q=0.2, application/*;q=0.1", True),
        ("text/*", True),
        ("text/html;q=0", False),
        ("text/html;q=oops", False),
        ("image/png", False),
    ],
)
def test_html_only_when_ranked_above_json(accept: str | None, html: bool) -> None:
    assert prefers_html(accept) is html


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"xyz", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("abc", False),
    ],
)
def test_if_none_match_uses_the_weak_comparison(header: str | None, matches: bool) -> None:
    assert etag_matches(header, '"abc"') is matches
