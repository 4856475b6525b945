"""The media app's HTTP API routes (``/api/titles``...), added to the server by its
plugin (`reelay.media._plugin`): upload a source, list titles, read one, and serve
the files of a published title."""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query, Response
from fastapi import Path as PathParameter
from starlette.requests import Request

from reelay.client import Client
from reelay.errors import InvalidKeyError
from reelay.media._observe import MediaObserver, TitleEntities
from reelay.media.config import BUCKET, INGEST_PREFIX, title_id_for
from reelay.media.titles import STATES
from reelay.plugins import Observer
from reelay.storage import validate_key
from reelay.web import _openapi
from reelay.web._openapi import errors, link
from reelay.web.api import FILE_TYPES, UPLOAD_BODY, media_type, store_upload

if TYPE_CHECKING:
    TitleState = str
else:  # the filter takes exactly the states a title has (an enum)
    TitleState = Literal[STATES]

_GET_TITLE = "/api/titles/{title_id}"
# Where an upload or a listing names a title, so a client can follow it to its lookup.
_UPLOADED = {"GetTitle": link(_GET_TITLE, "get", {"title_id": "$response.body#/title_id"})}
_LISTED = {"GetTitle": link(_GET_TITLE, "get", {"title_id": "$response.body#/0/id"})}


def add_routes(api: FastAPI, client: Client, observer: Observer | None) -> None:
    """Add the media routes over ``client``'s home to ``api``, reading titles through
    ``observer`` (the server's `MediaObserver`, shared with the live stream and the
    metrics)."""
    if not isinstance(observer, MediaObserver):  # a router made on its own
        observer = MediaObserver(client.state)
    titles = observer.titles
    tags: list[str | Enum] = ["titles"]

    @api.post(
        "/api/titles",
        tags=tags,
        status_code=201,
        responses={
            201: {"links": _UPLOADED},
            **errors(409),
        },
        openapi_extra=UPLOAD_BODY,
    )
    async def upload_title(
        request: Request,
        name: Annotated[
            str,
            Query(
                min_length=1,
                max_length=200,
                pattern=r"^[^/\\]+$",
                description="The source's file name (stored under the ingest prefix).",
                json_schema_extra={"pattern": _openapi.FILE_NAME},
            ),
        ],
    ) -> dict[str, Any]:
        """Upload a source video (the raw body) to the media pipeline's ingest prefix."""
        try:  # the key is made from the name: a bad key is the name's fault
            key = validate_key(INGEST_PREFIX + name)
        except InvalidKeyError as exc:
            raise HTTPException(422, f"query.name: {exc}") from None
        info = await store_upload(client, request, BUCKET, key)
        return {**info, "title_id": title_id_for(info["key"], info["etag"])}

    @api.get(
        "/api/titles",
        tags=tags,
        responses={200: {"links": _LISTED}},
    )
    async def list_titles(
        status: TitleState | None = None,
    ) -> list[dict[str, Any]]:
        """Every title, newest first, with its state and progress."""
        return await asyncio.to_thread(titles.all, status=status)

    @api.get(_GET_TITLE, tags=tags, responses=errors(404))
    async def get_title(title_id: str) -> dict[str, Any]:
        """A title: summary, report (once settled) and the timeline of its tasks."""
        return await asyncio.to_thread(TitleEntities(titles).detail, title_id, client)

    @api.get(
        "/api/titles/{title_id}/files/{path:path}",
        tags=tags,
        response_class=Response,
        responses={200: {"content": FILE_TYPES}, **errors(404)},
    )
    async def published_file(
        title_id: str,
        path: Annotated[
            str,
            PathParameter(
                description="The file's path in the published title, e.g. hls/index.m3u8.",
                json_schema_extra={"pattern": _openapi.KEY, "maxLength": _openapi.KEY_LENGTH},
            ),
        ],
    ) -> Response:
        """A file of the published title (HLS and DASH manifests, segments, subtitles)."""
        title = await asyncio.to_thread(titles.get, title_id)
        try:
            key = validate_key(f"published/{title['id']}/{path}")
        except InvalidKeyError as exc:
            raise HTTPException(422, f"path.path: {exc}") from None
        try:
            data = await asyncio.to_thread(client.get_object, title["bucket"], key)
        except InvalidKeyError:  # a key the store cannot hold: no file was published there
            raise LookupError(f"no file {path!r} in title {title_id!r}") from None
        return Response(data, media_type=media_type(path))
