"""``/content-blocks``: CMS slots filled for a user, as JSON or as a cacheable HTML fragment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response

from app.api.auth import may_read_profile
from app.api.content_html import (
    HTML_MEDIA_TYPE,
    JSON_MEDIA_TYPE,
    block_body,
    block_content,
    etag_matches,
    prefers_html,
    render_html,
    strong_etag,
)
from app.api.deps import ServedListsDep, SettingsDep
from app.api.responses import json_response
from app.api.schemas.content import ContentBlockResponse, ContentBlocksResponse
from app.api.schemas.recommend import USER_ID_FIELD
from app.serving.surfaces.content_blocks import UnknownSlotError
from app.serving.surfaces.served_lists import ServedLists

router = APIRouter(tags=["content blocks"])

MAX_SLOTS_PER_PAGE = 20

UserIdQuery = Annotated[
    str, Query(min_length=1, max_length=256, description=USER_ID_FIELD.description)
]
DeviceQuery = Annotated[
    str | None, Query(max_length=64, description="Device, for experiment targeting.")
]
AcceptHeader = Annotated[str | None, Header(description="`text/html` for an HTML fragment.")]
IfNoneMatchHeader = Annotated[
    str | None, Header(description="An ETag from an earlier answer: 304 when unchanged.")
]

_CACHING = (
    "`Cache-Control: private, max-age=N` (the slot's `max_age_seconds`), a strong `ETag` over "
    "the content and the format, `Vary: Accept`; `If-None-Match` with that ETag gets `304`. "
    "`Accept: text/html` answers an HTML fragment (every value escaped) for SSI/ESI inclusion."
)


@router.get(
    "/content-blocks/{slot}",
    response_model=ContentBlockResponse,
    summary="One content slot for a user",
    description="Fill the slot with its strategy, filters and business rules; items carry "
    "their display attributes. 404 for a slot the slots file does not declare. " + _CACHING,
    responses={304: {"description": "Not modified."}, 404: {"description": "Unknown slot."}},
)
async def content_block(
    request: Request,
    settings: SettingsDep,
    served: ServedListsDep,
    slot: Annotated[str, Path(min_length=1, max_length=64, description="Slot id.")],
    user_id: UserIdQuery,
    device: DeviceQuery = None,
    accept: AcceptHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    return await _answer(
        request,
        served,
        [slot],
        user_id,
        device,
        accept,
        if_none_match,
        use_cache=settings.cache.enabled,
        single=True,
    )


@router.get(
    "/content-blocks",
    response_model=ContentBlocksResponse,
    summary="Several content slots of one page",
    description="Fill the slots in order with no item repeated across them: earlier slots "
    "win, later ones reach further down their ranking. " + _CACHING,
    responses={304: {"description": "Not modified."}, 404: {"description": "Unknown slot."}},
)
async def content_blocks(
    request: Request,
    settings: SettingsDep,
    served: ServedListsDep,
    slots: Annotated[
        str,
        Query(
            min_length=1,
            max_length=1000,
            description=f"Comma-separated slot ids, in page order (at most {MAX_SLOTS_PER_PAGE}).",
        ),
    ],
    user_id: UserIdQuery,
    device: DeviceQuery = None,
    accept: AcceptHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    slot_ids = [s.strip() for s in slots.split(",")]
    problem = _slots_problem(slot_ids)
    if problem is not None:
        raise HTTPException(
            422, [{"loc": ["query", "slots"], "msg": problem, "type": "value_error"}]
        )
    return await _answer(
        request,
        served,
        slot_ids,
        user_id,
        device,
        accept,
        if_none_match,
        use_cache=settings.cache.enabled,
        single=False,
    )


def _slots_problem(slot_ids: list[str]) -> str | None:
    if any(not s for s in slot_ids):
        return "empty slot id"
    if len(slot_ids) > MAX_SLOTS_PER_PAGE:
        return f"at most {MAX_SLOTS_PER_PAGE} slots per page, got {len(slot_ids)}"
    repeated = sorted({s for s in slot_ids if slot_ids.count(s) > 1})
    if repeated:
        return f"slot(s) repeated: {', '.join(repeated)}"
    return None


async def _answer(
    request: Request,
    served: ServedLists,
    slot_ids: list[str],
    user_id: str,
    device: str | None,
    accept: str | None,
    if_none_match: str | None,
    *,
    use_cache: bool,
    single: bool,
) -> Response:
    try:
        blocks = await served.content_blocks(
            slot_ids,
            user_id,
            device=device,
            use_cache=use_cache,
            profile_visible=await may_read_profile(request, user_id),
        )
    except UnknownSlotError as exc:
        raise HTTPException(404, str(exc)) from exc
    html = prefers_html(accept)
    contents = [block_content(block) for block in blocks]
    etag = strong_etag(HTML_MEDIA_TYPE if html else JSON_MEDIA_TYPE, contents)
    headers = {
        "Cache-Control": f"private, max-age={min(b.slot.max_age_seconds for b in blocks)}",
        "ETag": etag,
        "Vary": "Accept",
    }
    request.state.source = blocks[0].source
    if etag_matches(if_none_match, etag):
        # The client shows what it has, under the recommendation id it was served with.
        return Response(status_code=304, headers=headers)
    tags = await served.record_blocks(blocks, user_id)
    bodies = [block_body(content, tag) for content, tag in zip(contents, tags, strict=True)]
    if single:
        headers |= tags[0].headers()
    if html:
        return Response(render_html(bodies), media_type=HTML_MEDIA_TYPE, headers=headers)
    body: dict[str, Any] = {"user_id": user_id}
    body |= bodies[0] if single else {"blocks": bodies}
    return json_response(body, headers=headers)
