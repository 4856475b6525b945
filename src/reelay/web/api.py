"""The HTTP API, ``/metrics`` and the dashboard of one reelay home (FastAPI).

`create_app` builds the ASGI app over a `Client` (and, when a runtime serves an app,
that `App`, for the functions page). This module imports no app: every installed
app's `reelay.plugins.Plugin` adds its routes, metrics, entities and dashboard pages
(media: ``/api/titles``, ``reelay_titles``; ``?title=`` on the live stream and the
invocation listing; its page files, served under ``/apps/media/`` and loaded by the
dashboard's page). Every request must carry the home's token (see
`reelay.web._auth`); a request without it gets 401 and leaves an ``Unauthorized
Request`` event (source ``reelay.web``) with its address, method and path (past 60 a
minute from one address, one event with their count: see `Audit`); a browser signs in
with the form it is shown instead. Given a `Kinesis`, the server also answers Kinesis's
JSON protocol (``POST /`` with ``X-Amz-Target: Kinesis_20131202.*``), whose clients sign
with AWS Signature Version 4 and reelay's access keys instead of sending the token
(`reelay.streams.kinesis`); its refusals are audited as the API's. `reelay.web._openapi`
completes the served OpenAPI document (security, error answers, name rules); a path
answers OPTIONS, and a method it does not take 405, with every method it takes in
``Allow``.

One observer task per server reads the state once a second (metrics snapshot, latest
failures, the apps' entities, alert evaluation) and keeps a short history; each ``/api/live``
stream (server-sent events) sends that history once, then every new point, so any
number of open dashboards cost one set of queries.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.message
import hashlib
import inspect
import json
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import StreamingResponse
from starlette.routing import Match, Route

from reelay.client import Client
from reelay.errors import ConfigError, InvalidKeyError, ReelayError
from reelay.events import parse_detail, parse_time
from reelay.keys import AccessKeys, SecretKey
from reelay.observe.alerts import Alerter
from reelay.observe.metrics import NODES_S, Metrics
from reelay.plugins import Entities, installed
from reelay.runtime.app import App
from reelay.state import FAILED, STATUSES, FunctionStats
from reelay.storage import validate_bucket, validate_key
from reelay.streams.kinesis import Kinesis, KinesisApp, KinesisRouter
from reelay.web import _openapi
from reelay.web._auth import COOKIE, SIGN_IN, Audit, FormError, presented, read_sign_in, same
from reelay.web._openapi import describe, errors

STATIC = Path(__file__).parent / "static"
HLS_JS = Path(__file__).parent / "node_modules" / "hls.js" / "dist" / "hls.min.js"
HISTORY = 300  # live points kept for a dashboard that opens late (5 minutes at 1 s)
TICK_S = 1.0
RESERVED_SOURCES = ("aws.", "reelay.")

if TYPE_CHECKING:
    Status = str
else:  # the filter takes exactly the states the runtime has (an enum)
    Status = Literal[STATUSES]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many rows.")]


class EventEntry(BaseModel):
    """One PutEvents entry, as EventBridge takes it (an unknown field is an error, as in
    `Client.put_events`, rather than dropped)."""

    model_config = ConfigDict(extra="forbid")

    Source: str = Field(min_length=1, max_length=256)
    DetailType: str = Field(min_length=1, max_length=128)
    Detail: Annotated[
        dict[str, Any],
        BeforeValidator(parse_detail),
        # Documented as the object: a generator reading "or a string" would send text
        # that is not JSON and take its refusal for a bug.
        WithJsonSchema(
            {
                "type": "object",
                "description": "The event's detail: a JSON object, or that object as JSON "
                "text (the form EventBridge's PutEvents takes). Anything else is refused "
                "(EventBridge calls it MalformedDetail).",
            }
        ),
    ] = Field(default_factory=dict)
    Resources: list[str] = Field(default_factory=list)
    Time: Annotated[
        datetime | None,
        BeforeValidator(lambda time: None if time is None else parse_time(time)),
        WithJsonSchema(
            {
                "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
                "description": "When it happened, in RFC 3339 (e.g. 2026-01-31T12:00:00Z); "
                "absent or null: when it is put.",
            }
        ),
    ] = None
    EventBusName: str | None = None

    @field_validator("Source")
    @classmethod
    def _not_reserved(cls, source: str) -> str:
        # As EventBridge keeps aws.* to AWS: reelay's own apps (the pipeline, alerts,
        # this server) emit reelay.*, and a forged "Media Title Checked" would publish.
        if source.startswith(RESERVED_SOURCES):
            raise ValueError(
                f"sources starting with {' or '.join(RESERVED_SOURCES)} are reserved for "
                "reelay's own apps and AWS; use your own, such as my.app"
            )
        return source


class PutEventsRequest(BaseModel):
    Entries: list[EventEntry] = Field(min_length=1, max_length=10)


class RedriveRequest(BaseModel):
    """Which DLQ entries to redrive: these ids, this function's, or (neither) all."""

    ids: list[str] = Field(default_factory=list, max_length=1000)
    function: str | None = None


class Live:
    """The observer's latest reading and a short history, shared by every stream."""

    def __init__(self) -> None:
        self.points: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.latest: dict[str, Any] = {}
        self.tick = asyncio.Condition()
        self.stopping = False

    async def close(self) -> None:
        """End every stream (each finishes its response) and the observer loops."""
        self.stopping = True
        async with self.tick:
            self.tick.notify_all()


class _Api(FastAPI):
    """FastAPI, serving the document `reelay.web._openapi.describe` completes."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = describe(super().openapi())
        return self.openapi_schema


class EventStream(StreamingResponse):
    """Server-sent events (so documented)."""

    media_type = "text/event-stream"


class PrometheusText(Response):
    """Prometheus' text exposition format (so documented)."""

    media_type = "text/plain"


# An upload's body: the object's bytes, read as a stream (never held in memory).
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The object's bytes, streamed (any size; not empty).",
        "content": {
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary", "minLength": 1}
            }
        },
    }
}
_PAGES = "/{page:path}"  # the dashboard's pages, and OPTIONS on any path


def create_app(
    client: Client,
    token: str,
    *,
    app: App | None = None,
    alerter: Alerter | None = None,
    audit: Audit | None = None,
    kinesis: Kinesis | None = None,
    keys: AccessKeys | None = None,
) -> FastAPI:
    """The ASGI app: API under ``/api``, ``/metrics``, the dashboard at ``/``, and what
    every installed app adds (see `reelay.plugins`); with ``kinesis``, the Kinesis API,
    its requests signed by ``keys`` (default: the access keys in the client's state,
    under the home's secret key)."""
    audit = audit or Audit(client)
    plugins = list(installed().values())
    pages = {p.name: _pages(p.name, p.pages) for p in plugins if p.pages is not None}
    index = _index(pages)
    observers = {p.name: p.observe(client.state) for p in plugins if p.observe is not None}
    entities = [e for observer in observers.values() for e in observer.entities]
    following = _following(entities)
    metrics = Metrics(client.state, list(observers.values()))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    live = Live()

    def read_live() -> dict[str, Any]:
        audit.flush()
        now = time.time()
        return {
            "point": {"time": now, **metrics.snapshot(now)},
            "failures": metrics.failures(),
            **{e.name: e.all()[:50] for e in entities},
            "alerts": alerter.active() if alerter is not None else [],
        }

    async def observe() -> None:
        while not live.stopping:
            try:
                reading = await asyncio.to_thread(read_live)
            except Exception as exc:  # keep observing; the dashboard shows the error
                reading = {"error": f"{type(exc).__name__}: {exc}"}
            async with live.tick:
                if "point" in reading:
                    live.points.append(reading["point"])
                live.latest = reading
                live.tick.notify_all()
            await asyncio.sleep(TICK_S)

    async def judge(alerter: Alerter) -> None:
        """Evaluate the alert rules on the newest point; on its own loop, because a slow
        webhook receiver must not hold up the live view."""
        while not live.stopping:
            point = live.points[-1] if live.points else None
            if point is not None:
                try:
                    await asyncio.to_thread(alerter.evaluate, point, point["time"])
                except Exception as exc:  # keep judging; the next tick retries
                    live.latest = {**live.latest, "error": f"alerts: {exc}"}
            await asyncio.sleep(TICK_S)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(observe())]
        if alerter is not None:
            tasks.append(asyncio.create_task(judge(alerter)))
        try:
            yield
        finally:
            await live.close()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(audit.flush, force=True)

    api = _Api(
        title="reelay",
        summary="Events, functions, invocations, the DLQ and the apps' own things (media: "
        "titles) of one reelay home.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads from a CDN; the document itself is served
        redoc_url=None,
        openapi_url="/api/openapi.json",
        dependencies=[Depends(_json_only)],
    )
    # `Server` awaits this before it stops serving: an open stream never ends by itself,
    # and uvicorn would wait out its grace period, then cancel the stream mid-response.
    api.state.close_streams = live.close

    # -- authentication and errors ---------------------------------------------------------

    def signed_in(target: str) -> Response:
        """On to ``target`` (a URL without the token), the token kept in a cookie."""
        redirect = RedirectResponse(target, 303)
        redirect.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return redirect

    async def sign_in(request: Request) -> Response:
        """The sign-in form, posted: the token is in the body, never in a URL."""
        try:
            given, target = await read_sign_in(request)
        except FormError as exc:
            return _login_page(exc.message, "/", exc.status)
        if not same(given, token):
            await asyncio.to_thread(audit.refused, request, "wrong token" if given else "no token")
            message = "That token is wrong." if given else "Enter the token."
            return _login_page(message, target)
        return signed_in(target)

    @api.middleware("http")
    async def authenticate(request: Request, call_next: Callable[..., Any]) -> Response:
        if request.url.path == SIGN_IN and request.method == "POST":
            return await sign_in(request)
        given, where = presented(request)
        if not same(given, token):
            await asyncio.to_thread(audit.refused, request, "wrong token" if given else "no token")
            return _unauthorized(request, where if given else None)
        if where == "query":  # a browser login: keep the token in a cookie, not the URL
            return signed_in(str(request.url.remove_query_params("token")))
        response: Response = await call_next(request)
        return response

    if kinesis is not None:  # outermost: Kinesis's requests never meet the bearer token
        if keys is None:
            keys = AccessKeys(client.state, SecretKey.load(client.settings.home))
        api.add_middleware(KinesisRouter, kinesis=KinesisApp(kinesis, keys, audit.refused))

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        for error in exc.errors():
            # FastAPI files a body it cannot parse as a problem "at" a character offset
            # (body.13): it is the body as a whole that is wrong, so 400, saying where.
            if error["type"] == "json_invalid":
                return JSONResponse({"error": f"body: not JSON ({_where(error, exc.body)})"}, 400)
        problems = [_problem(e) for e in exc.errors()]
        return JSONResponse({"error": "; ".join(problems), "problems": problems}, 422)

    def allowed(request: Request) -> list[str]:
        """The methods the request's path takes (none: no such path)."""
        methods: set[str] = set()
        for route in api.routes:
            if not isinstance(route, Route) or not route.methods:
                continue
            # The catch-all matches every path; the dashboard serves only its own pages.
            if route.path == _PAGES and not _is_page(request.url.path):
                continue
            if route.matches(request.scope)[0] is not Match.NONE:
                methods |= route.methods
        return sorted(methods - {"OPTIONS"})

    def not_allowed(request: Request) -> JSONResponse:
        """405 with the methods the path takes, or 404 when it takes none."""
        methods = allowed(request)
        if not methods:
            return _no_such_endpoint(request)
        message = f"{request.method} is not allowed on {request.url.path}; it takes "
        return JSONResponse(
            {"error": message + ", ".join(methods)},
            405,
            headers={"Allow": ", ".join([*methods, "OPTIONS"])},
        )

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # the one error shape, {"error": message}, that clients and the dashboard read
        if exc.status_code == 405:  # Starlette's Allow names one route's methods, not all
            return not_allowed(request)
        message = exc.detail
        if exc.status_code == 400 and exc.__cause__ is not None:  # FastAPI read no JSON
            message = f"body: not JSON ({_unreadable(exc.__cause__)})"
        body: dict[str, Any] = {"error": message}
        if exc.status_code == 422:
            body["problems"] = [message]
        return JSONResponse(body, exc.status_code, headers=exc.headers)

    @api.exception_handler(ReelayError)
    async def refused(_: Request, exc: ReelayError) -> JSONResponse:
        code = 404 if isinstance(exc, LookupError) else 400
        return JSONResponse({"error": str(exc)}, code)

    @api.exception_handler(LookupError)
    async def missing(_: Request, exc: LookupError) -> JSONResponse:
        # a KeyError's str() is its repr; other lookups carry their message as is
        message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        return JSONResponse({"error": message}, 404)

    # -- objects -------------------------------------------------------------------------------

    @api.put(
        "/api/objects/{bucket}/{key:path}",
        tags=["objects"],
        status_code=201,
        responses=errors(409),
        openapi_extra=UPLOAD_BODY,
    )
    async def put_object(
        request: Request,
        bucket: Annotated[
            str,
            PathParameter(
                description="An S3 bucket name.",
                json_schema_extra={"pattern": _openapi.BUCKET, "minLength": 3, "maxLength": 63},
            ),
        ],
        key: Annotated[
            str,
            PathParameter(
                description="The object key: at most 1024 bytes of UTF-8, segments "
                "separated by '/'.",
                json_schema_extra={"pattern": _openapi.KEY, "maxLength": _openapi.KEY_LENGTH},
            ),
        ],
    ) -> dict[str, Any]:
        """Upload an object (the raw request body, streamed); its S3 event is appended."""
        return await store_upload(client, request, bucket, key)

    # -- what the installed apps add (before the dashboard's catch-all) ------------------------

    for plugin in plugins:
        if plugin.routes is not None:
            plugin.routes(api, client, observers.get(plugin.name))

    # -- functions, invocations, events, DLQ ---------------------------------------------------

    @api.get("/api/functions", tags=["functions"])
    async def functions() -> list[dict[str, Any]]:
        """The served app's functions with their settings and invocation counts."""
        return await asyncio.to_thread(_functions, client, app)

    @api.get("/api/nodes", tags=["nodes"])
    async def nodes(since_s: Annotated[float, Query(ge=0)] = NODES_S) -> list[dict[str, Any]]:
        """The dispatchers and workers that serve the state, newest sign of life first:
        name, kind (dispatcher, worker), host, pid, reelay version, when first and last
        seen; those seen in the last ``since_s`` seconds (default a day)."""
        found = await asyncio.to_thread(client.state.nodes, time.time() - since_s)
        return [n.as_dict() for n in found]

    @api.get("/api/invocations", tags=["invocations"], responses=errors(404))
    async def invocations(
        function: str | None = None,
        status: Status | None = None,
        limit: Limit = 100,
        before: Annotated[
            str | None,
            Query(
                min_length=1,
                description="The next page: the invocations after this one (the last id "
                "of the previous page) in this listing's order. An unknown id is a 404.",
            ),
        ] = None,
        # A default, not an annotation: annotations are text here, read in this module.
        followed: Sequence[tuple[Entities, str]] = Depends(following),
    ) -> list[dict[str, Any]]:
        """The newest invocations first, by function, status or an app's entity (media:
        a title), a page at a time."""

        def read() -> list[dict[str, Any]]:
            if before is not None:
                try:  # the state would answer an empty page; a cursor that is wrong is an error
                    client.state.invocation(before)
                except LookupError:
                    raise LookupError(f"query.before: no invocation {before!r}") from None
            if followed:
                # Several entities named (media's title, analytics' aggregate): those of all.
                lists = [entity.invocation_ids(entity_id) for entity, entity_id in followed]
                common = set(lists[0]).intersection(*lists[1:])
                listed = [
                    inv
                    for inv in map(client.state.invocation, [i for i in lists[0] if i in common])
                    if (function is None or inv.function == function)
                    and (status is None or inv.status == status)
                ]
                ids = [inv.id for inv in listed]
                if before is not None:
                    if before not in ids:
                        raise LookupError(
                            f"query.before: invocation {before!r} is not in this listing"
                        )
                    listed = listed[ids.index(before) + 1 :]
                return [inv.as_dict() for inv in listed[:limit]]
            rows = client.state.invocations(
                function=function, status=status, limit=limit, before=before
            )
            return [inv.as_dict() for inv in rows]

        return await asyncio.to_thread(read)

    @api.get("/api/invocations/{request_id}", tags=["invocations"], responses=errors(404))
    async def invocation(request_id: str) -> dict[str, Any]:
        """One invocation with its event and every attempt's logs."""

        def read() -> dict[str, Any]:
            inv = client.state.invocation(request_id)
            attempts = client.state.attempts(invocation_id=request_id, limit=1000)
            return {
                **inv.as_dict(),
                "event": client.state.event(inv.event_seq).as_dict(),
                "attempt_log": [vars(a) for a in reversed(attempts)],
            }

        return await asyncio.to_thread(read)

    @api.get("/api/events", tags=["events"])
    async def events(
        source: str | None = None,
        kind: Literal["s3", "event", "invoke", "schedule"] | None = None,
        limit: Limit = 100,
        before: Annotated[
            int | None,
            Query(
                ge=1,
                le=2**63 - 1,  # SQLite's largest integer
                description="The next page: the events older than this seq (the last seq "
                "of the previous page).",
            ),
        ] = None,
    ) -> list[dict[str, Any]]:
        """The newest events first, a page at a time."""
        rows = await asyncio.to_thread(
            client.state.events, limit=limit, source=source, kind=kind, before=before
        )
        return [e.as_dict() for e in rows]

    @api.post("/api/events", tags=["events"], status_code=201, responses=errors(400))
    async def put_events(request: PutEventsRequest) -> dict[str, Any]:
        """Append custom events (EventBridge PutEvents entries); rules route them."""
        entries = [e.model_dump(exclude_none=True) for e in request.Entries]
        ids = await asyncio.to_thread(client.put_events, entries)
        return {"Entries": [{"EventId": i} for i in ids], "FailedEntryCount": 0}

    @api.get("/api/dlq", tags=["dlq"])
    async def dlq(function: str | None = None, limit: Limit = 100) -> list[dict[str, Any]]:
        """Invocations that ran out of retries, newest first."""
        rows = await asyncio.to_thread(
            client.state.invocations, function=function, status="failed", limit=limit
        )
        return [inv.as_dict() for inv in rows]

    @api.post("/api/dlq/redrive", tags=["dlq"], responses=errors(400))
    async def redrive(
        request: Annotated[RedriveRequest, Body(default_factory=RedriveRequest)],
    ) -> dict[str, int]:
        """Send failed invocations back to the queue with a fresh retry budget."""
        count = await asyncio.to_thread(
            client.state.redrive, ids=request.ids, function=request.function
        )
        return {"redriven": count}

    # -- metrics, alerts and the live stream ---------------------------------------------------

    @api.get("/metrics", tags=["metrics"], response_class=PrometheusText)
    async def prometheus() -> Response:
        """Prometheus text exposition format."""
        body = await asyncio.to_thread(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @api.get("/api/alerts", tags=["alerts"])
    async def alerts() -> dict[str, Any]:
        """The alert rules and the alerts firing now."""
        if alerter is None:
            return {"rules": [], "firing": []}
        rules = [
            {
                "name": r.name,
                "severity": r.severity,
                "summary": r.summary,
                "condition": r.condition,
                "webhook": r.webhook,
            }
            for r in alerter.rules
        ]
        return {"rules": rules, "firing": alerter.active()}

    @api.get("/api/live", tags=["metrics"], response_class=EventStream)
    async def stream(
        request: Request,
        followed: Sequence[tuple[Entities, str]] = Depends(following),
    ) -> EventStream:
        """Server-sent events: the history once, then a point a second (following an
        app's entity, such as ``title``, its detail too, under that name)."""

        async def frames() -> AsyncIterator[str]:
            first = True
            while not await request.is_disconnected():
                async with live.tick:
                    # Checked under the lock, as `Live.close` notifies under it: a stream
                    # that was not waiting when the server began to stop must not wait now.
                    if not live.stopping:
                        await live.tick.wait()
                if live.stopping:  # the server is stopping: end the response cleanly
                    return
                message = dict(live.latest)
                if first:
                    message["history"] = list(live.points)
                    first = False
                for entity, entity_id in followed:
                    try:
                        message[entity.param] = await asyncio.to_thread(
                            entity.detail, entity_id, client
                        )
                    except LookupError:
                        message[entity.param] = None
                yield f"data: {json.dumps(message)}\n\n"

        return EventStream(frames(), headers={"Cache-Control": "no-store"})

    # -- the dashboard -------------------------------------------------------------------------

    @api.get("/vendor/hls.min.js", include_in_schema=False)
    async def hls_js() -> Response:
        if not HLS_JS.exists():
            return Response(
                "hls.js is not installed: run `python3 dev.py demo` (or `npm ci` in "
                f"{HLS_JS.parents[3]}) to install it from the npm registry",
                404,
            )
        return FileResponse(HLS_JS, media_type="text/javascript")

    @api.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        path = STATIC / name
        if "/" in name or not path.is_file():
            raise HTTPException(404, f"no static file {name!r}")
        return FileResponse(path, media_type=media_type(name))

    @api.get("/apps/{name}/{path:path}", include_in_schema=False)
    async def app_page_file(name: str, path: str) -> Response:
        """A file of an installed app's dashboard pages (its `Plugin.pages`)."""
        file = _page_file(pages[name], path) if name in pages else None
        if file is None:
            raise HTTPException(404, f"no file {path!r} in the pages of app {name!r}")
        return FileResponse(file, media_type=media_type(path))

    @api.get("/", include_in_schema=False)
    @api.get(_PAGES, include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        if not _is_page(request.url.path):  # an API path, not the method it takes
            return not_allowed(request)
        return HTMLResponse(index)

    @api.options(_PAGES, include_in_schema=False)
    async def options(request: Request) -> Response:
        """The methods a path takes (RFC 9110's OPTIONS), in ``Allow``."""
        methods = allowed(request)
        if not methods:
            return _no_such_endpoint(request)
        return Response(status_code=204, headers={"Allow": ", ".join([*methods, "OPTIONS"])})

    return api


# -- helpers ---------------------------------------------------------------------------------


async def store_upload(client: Client, request: Request, bucket: str, key: str) -> dict[str, Any]:
    """Spool the body to a file in the home (never all in memory), then store it.
    (Also what an app's upload route calls.)"""
    for name, value, check in (("bucket", bucket, validate_bucket), ("key", key, validate_key)):
        try:
            check(value)
        except InvalidKeyError as exc:
            raise HTTPException(422, f"path.{name}: {exc}") from None
    spool = client.settings.home / "cache" / "uploads"
    spool.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=spool) as f:
        async for chunk in request.stream():
            await asyncio.to_thread(f.write, chunk)
        if f.tell() == 0:
            raise HTTPException(422, "body: the upload is empty")
        f.flush()
        try:
            info = await asyncio.to_thread(client.put_object, bucket, key, Path(f.name))
        except InvalidKeyError as exc:  # a valid key this store cannot hold (beside another)
            raise HTTPException(409, str(exc)) from None
    return {"bucket": info.bucket, "key": info.key, "size": info.size, "etag": info.etag}


def _following(entities: Sequence[Entities]) -> Callable[..., list[tuple[Entities, str]]]:
    """A dependency taking one query parameter per app entity (media: ``title``): the
    entities a request follows, and their ids (none when it names none)."""

    def following(**given: str | None) -> list[tuple[Entities, str]]:
        return [(e, str(given[e.param])) for e in entities if given.get(e.param) is not None]

    following.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                e.param,
                inspect.Parameter.KEYWORD_ONLY,
                default=Query(None, min_length=1, description=f"Only {e.about}'s."),
                annotation=str | None,
            )
            for e in entities
        ]
    )
    return following


def _no_such_endpoint(request: Request) -> JSONResponse:
    return JSONResponse({"error": f"no such endpoint: {request.url.path}"}, 404)


_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}


FILE_TYPES = {
    media_type: {"schema": {"type": "string", "format": "binary"}}
    for media_type in sorted({*_TYPES.values(), "application/octet-stream"})
}


def _pages(app: str, directory: Path) -> Path:
    """The directory of an app's dashboard pages, resolved (`_page_file` keeps every
    file served inside it); one that is not there is the app's error, said at start."""
    if not directory.is_dir():
        raise ConfigError(
            f"app {app!r}: its dashboard pages {str(directory)!r} are not a directory "
            "(Plugin.pages); reinstall the app"
        )
    return directory.resolve()


def _page_file(root: Path, path: str) -> Path | None:
    """The file at ``path`` under ``root``, or None: none there, or a path that would
    leave ``root`` (``..``, an absolute path, a link out) or names a hidden file."""
    if "\0" in path or "\\" in path:
        return None
    if any(not part or part.startswith(".") for part in path.split("/")):
        return None
    file = (root / path).resolve()
    return file if file.is_relative_to(root) and file.is_file() else None


def _index(pages: Mapping[str, Path]) -> str:
    """The dashboard's page, loading every app's page files after its own (each app's
    ``*.css`` and ``*.js`` at the top of its pages, by name; the scripts deferred, so
    they run in this order before the dashboard routes)."""
    tags = []
    for name, root in sorted(pages.items()):
        for file in sorted(root.iterdir(), key=lambda f: f.name):
            url = escape(f"/apps/{quote(name)}/{quote(file.name)}")
            if file.name.startswith(".") or not file.is_file():
                continue  # as `_page_file` serves none
            if file.suffix == ".css":
                tags.append(f'<link rel="stylesheet" href="{url}">')
            elif file.suffix == ".js":
                tags.append(f'<script src="{url}" defer></script>')
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    return page.replace("<!-- apps -->", "\n  ".join(tags))


def _is_page(path: str) -> bool:
    """Whether ``path`` is the dashboard's (any path but the API's and the metrics')."""
    return not (path == "/api" or path.startswith(("/api/", "/metrics")))


async def _json_only(request: Request) -> None:
    """Refuse (415) a body sent to a route that takes JSON unless it is sent as JSON.

    Without this FastAPI hands the body's bytes to the model, whose complaint ("Input
    should be a valid dictionary") hides the cause. Reading it as JSON whatever its type
    would be worse: a page on another site may post ``text/plain`` or a form here without
    asking first (no CORS preflight), never ``application/json``. An empty body is
    left to the route (redrive's default).
    """
    route = request.scope.get("route")
    # Only routes with a JSON body model: an upload's body is a stream never read here.
    if getattr(route, "body_field", None) is None or not await request.body():
        return
    sent = request.headers.get("content-type")
    if sent is not None:
        kind = email.message.Message()
        kind["content-type"] = sent
        subtype = kind.get_content_subtype()
        if kind.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        ):  # the types FastAPI reads as JSON
            return
    sent = "none" if sent is None else json.dumps(sent)[1:-1][:80]  # a header: any text
    raise HTTPException(
        415, f"body: send it as JSON, with Content-Type: application/json (sent: {sent})"
    )


def _where(error: Any, document: Any) -> str:
    """What is wrong with a body that is not JSON, and where (line and column, 1-based)."""
    text = document if isinstance(document, str) else ""
    at = json.JSONDecodeError(error["ctx"]["error"], text, error["loc"][1])
    return f"{at.msg} at line {at.lineno}, column {at.colno}"


def _problem(error: Any) -> str:
    """One validation problem: where, what, and what was given."""
    where = ".".join(str(p) for p in error["loc"])
    # pydantic files a validator's ValueError as "Value error, <its message>": the
    # message alone says what was wrong.
    cause = error.get("ctx", {}).get("error")
    message = str(cause) if error["type"] == "value_error" and cause is not None else error["msg"]
    return f"{where}: {message}" + _got(error)


def _unreadable(cause: BaseException) -> str:
    """Why FastAPI could not read a body as JSON, in words."""
    if isinstance(cause, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(cause, RecursionError):
        return "it is nested too deeply"
    return str(cause) or type(cause).__name__


def _got(error: Any) -> str:
    """What a query or path parameter was given (bodies can be large: not repeated)."""
    if "input" not in error or error["loc"][0] == "body":
        return ""
    return f" (got {json.dumps(error['input'], default=str)[:80]})"


def media_type(path: str) -> str:
    """The Content-Type of a file served by its name (HLS, DASH, video, the dashboard's)."""
    return _TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


_LOGIN_STYLE = """
body{font:15px system-ui;margin:15vh auto;max-width:28rem;padding:0 1rem;color:#1d2330}
input{width:100%;padding:.5rem;font:inherit;box-sizing:border-box}
button{margin-top:.6rem;padding:.45rem 1rem;font:inherit}
.problem{color:#a4262c;background:#fde7e9;border-radius:4px;padding:.5rem .7rem}"""
# The dashboard's pages are in the fragment (/#/titles/X), which a browser never sends:
# the page asked for reaches `next` only from here (the server keeps it to local paths).
_LOGIN_SCRIPT = """const next = document.querySelector("input[name=next]");
if (location.hash && !next.value.includes("#")) next.value += location.hash;"""
_LOGIN = Template("""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>reelay: sign in</title>
<style>$style</style>
</head><body>
<h1>reelay</h1><p>This dashboard needs the token that <code>reelay up</code> printed when it
first started (it is in <code>api-token</code> in the reelay home).</p>
$problem<form method="post" action="/sign-in"><input type="hidden" name="next" value="$next">
<label>Token <input name="token" type="password" autocomplete="current-password" autofocus
required></label><button>Sign in</button></form>
<script>$script</script></body></html>""")


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# The page that takes the token runs its own script and style and nothing else, posts
# only here, and cannot be framed by another page (clickjacking).
_LOGIN_POLICY = (
    f"default-src 'none'; script-src {_digest(_LOGIN_SCRIPT)}; "
    f"style-src {_digest(_LOGIN_STYLE)}; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)

# What the sign-in page says about the token a request carried, by where it was.
_WRONG = {
    "query": "The token in that link is wrong.",
    "cookie": "Your sign-in is no longer valid (the token changed): enter the token again.",
    "header": "That token is wrong.",
}


def _login_page(problem: str | None, target: str, status: int = 401) -> HTMLResponse:
    """The sign-in form; ``problem``: what was wrong with the last try; ``target``:
    the page to go to once signed in."""
    html = _LOGIN.substitute(
        problem=f'<p class="problem" role="alert">{escape(problem)}</p>\n' if problem else "",
        next=escape(target),
        style=_LOGIN_STYLE,
        script=_LOGIN_SCRIPT,
    )
    headers = {"Content-Security-Policy": _LOGIN_POLICY}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return HTMLResponse(html, status, headers=headers)


def _unauthorized(request: Request, presented_in: str | None) -> Response:
    """401: the sign-in page for a browser (saying what was wrong with the token it
    sent, if any), else JSON."""
    if "text/html" in request.headers.get("accept", ""):
        url = request.url.remove_query_params("token")
        target = url.path + (f"?{url.query}" if url.query else "")
        if url.path == SIGN_IN:  # the form's own address, opened: on to the overview
            target = "/"
        return _login_page(_WRONG.get(presented_in or ""), target)
    return JSONResponse(
        {"error": "missing or wrong bearer token (Authorization: Bearer TOKEN)"},
        401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _functions(client: Client, app: App | None) -> list[dict[str, Any]]:
    stats = client.state.function_stats()
    dlq = {fn: n for (fn, _), n in client.state.counts_by_function([FAILED]).items()}
    names = sorted(set(stats) | set(dlq) | set(app.functions if app else ()))
    out = []
    for name in names:
        spec = app.functions.get(name) if app else None
        row = stats.get(name, FunctionStats(0, 0, None, None, None))
        out.append(
            {
                "name": name,
                "handler": spec.handler if spec else None,
                "timeout_s": spec.timeout_s if spec else None,
                "memory_mb": spec.memory_mb if spec else None,
                "reserved_concurrency": spec.reserved_concurrency if spec else None,
                "triggers": app.triggers(name) if app and spec else None,
                "invocations": row.attempts,
                "errors": row.errors,
                "avg_ms": row.avg_ms,
                "max_ms": row.max_ms,
                "last_started": row.last_started,
                "dlq": dlq.get(name, 0),
            }
        )
    return out
