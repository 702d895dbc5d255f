"""Content blocks as wire formats: the JSON body and the HTML fragment for SSI/ESI inclusion,
plus the HTTP caching rules they share (content negotiation, ETag, ``If-None-Match``).

Every value written into HTML is escaped (text and attributes alike, quotes included), and an
image is shown only from an ``http``/``https`` URL, so catalogue data can never inject markup
or script into the including page.
"""

from __future__ import annotations

import hashlib
from html import escape
from typing import Any
from urllib.parse import urlsplit

import orjson

from app.serving.experiments.service import ExperimentTag
from app.serving.surfaces.content_blocks import Block, BlockItem

HTML_MEDIA_TYPE = "text/html; charset=utf-8"
JSON_MEDIA_TYPE = "application/json"


def block_content(block: Block) -> dict[str, Any]:
    """A block's JSON fields except the per-response ``recommendation_id``: the ETag's input."""
    assignment = block.assignment
    return {
        "slot": block.slot.id,
        "title": block.title,
        "items": [_item_fields(item) for item in block.items],
        "source": block.source,
        "model_version": block.model_version,
        "experiment_id": assignment.experiment_id if assignment else None,
        "variant": assignment.variant if assignment else None,
    }


def block_body(content: dict[str, Any], tag: ExperimentTag) -> dict[str, Any]:
    return {**content, "recommendation_id": tag.recommendation_id}


def render_html(bodies: list[dict[str, Any]]) -> str:
    """One ``<section>`` per block body (``block_body``), every value escaped."""
    return "\n".join(_section(body) for body in bodies) + "\n"


def strong_etag(media_type: str, contents: list[dict[str, Any]]) -> str:
    """A strong ETag over what the blocks show and how (JSON and HTML differ)."""
    digest = hashlib.blake2b(media_type.encode(), digest_size=16)
    digest.update(orjson.dumps(contents, option=orjson.OPT_SORT_KEYS))
    return f'"{digest.hexdigest()}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match`` semantics (RFC 9110 13.1.2): ``*`` or any listed tag equal to
    ``etag`` under the weak comparison."""
    if not if_none_match:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    return any(c == "*" or c.removeprefix("W/") == etag for c in candidates)


def prefers_html(accept: str | None) -> bool:
    """True when ``Accept`` ranks ``text/html`` above ``application/json`` (ties: JSON)."""
    if not accept:
        return False
    html_q = json_q = 0.0
    for media_range in accept.split(","):
        media, _, params = media_range.strip().partition(";")
        quality = _quality(params)
        media = media.strip().lower()
        if media in ("text/html", "text/*", "*/*"):
            html_q = max(html_q, quality)
        if media in ("application/json", "application/*", "*/*"):
            json_q = max(json_q, quality)
    return html_q > json_q


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def _item_fields(item: BlockItem) -> dict[str, Any]:
    display = item.display
    return {
        "item_id": display.item_id,
        "title": display.title,
        "categories": display.categories,
        "price": display.price,
        "in_stock": display.in_stock,
        "image_url": display.image_url,
        "score": item.score,
    }


def _section(body: dict[str, Any]) -> str:
    attributes = {
        "class": "recserve-block",
        "data-slot": body["slot"],
        "data-recommendation-id": body["recommendation_id"],
        "data-source": body["source"],
    }
    if body["experiment_id"] is not None:
        attributes["data-experiment-id"] = body["experiment_id"]
        attributes["data-variant"] = body["variant"]
    items = "".join(_li(position, item) for position, item in enumerate(body["items"], 1))
    return (
        f"<section{_attrs(attributes)}>"
        f'<h2 class="recserve-block__title">{escape(body["title"])}</h2>'
        f'<ul class="recserve-block__items">{items}</ul></section>'
    )


def _li(position: int, item: dict[str, Any]) -> str:
    parts = []
    if _is_web_url(item["image_url"]):
        image = {"src": item["image_url"], "alt": item["title"], "loading": "lazy"}
        parts.append(f"<img{_attrs(image)}>")
    parts.append(f'<span class="recserve-item__title">{escape(item["title"])}</span>')
    if item["price"] is not None:
        parts.append(f'<span class="recserve-item__price">{item["price"]:.2f}</span>')
    attributes = {
        "class": "recserve-item",
        "data-item-id": item["item_id"],
        "data-position": str(position),
    }
    return f"<li{_attrs(attributes)}>{''.join(parts)}</li>"


def _attrs(attributes: dict[str, str]) -> str:
    return "".join(f' {name}="{escape(value, quote=True)}"' for name, value in attributes.items())


def _is_web_url(url: str | None) -> bool:
    return url is not None and urlsplit(url).scheme.lower() in ("http", "https")
