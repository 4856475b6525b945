"""The HTTP API's answers to requests without the token and to broken input.

Every request goes to a real uvicorn server on loopback over a fresh home (the `api`
fixture: no runtime). Invocations are made the way a dispatcher makes them, through
the home's `State` (claim, then finish with an attempt record), so DLQ and metrics
see real rows without running a function.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from reelay.errors import NoSuchKeyError
from reelay.media.config import SOURCE, title_id_for
from reelay.media.titles import STATE_CHANGE
from reelay.state import (
    FAILED,
    QUEUED,
    STATUSES,
    SUCCEEDED,
    Attempt,
    NewEvent,
    Outcome,
    State,
)
from reelay.web import ensure_token
from reelay.web._auth import COOKIE, TOKEN_FILE

from .conftest import Served

MiB = 1 << 20

# One request to each endpoint family (with a body where the endpoint takes one).
ENDPOINTS: list[tuple[str, str, bytes | None]] = [
    ("GET", "/api/titles", None),
    ("GET", "/api/titles/some-title", None),
    ("GET", "/api/titles/some-title/files/hls/index.m3u8", None),
    ("POST", "/api/titles?name=clip.mp4", b"not really a video"),
    ("GET", "/api/events", None),
    ("POST", "/api/events", b'{"Entries": [{"Source": "s", "DetailType": "d"}]}'),
    ("GET", "/api/invocations", None),
    ("GET", "/api/invocations/some-id", None),
    ("GET", "/api/dlq", None),
    ("POST", "/api/dlq/redrive", b"{}"),
    ("GET", "/api/functions", None),
    ("GET", "/api/alerts", None),
    ("GET", "/api/live", None),
    ("GET", "/metrics", None),
    ("GET", "/api/openapi.json", None),
    ("GET", "/", None),
    ("GET", "/titles", None),
    ("GET", "/static/app.js", None),
    ("GET", "/vendor/hls.min.js", None),
    ("PUT", "/api/objects/media/uploads/a.txt", b"some bytes"),
    ("GET", "/api/no-such-endpoint", None),
]


def sound(response: httpx.Response) -> httpx.Response:
    """The response, once checked to be no server error and no traceback."""
    assert response.status_code < 500, (response.status_code, response.text)
    assert "Traceback" not in response.text
    return response


def refused(response: httpx.Response, status: int, field: str | None = None) -> str:
    """The message of a JSON error answer (``{"error": ...}``), checked to name ``field``
    (``query.limit``, ``body.Entries.0.Source``...) as where the problem is."""
    sound(response)
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    message = body["error"]
    assert isinstance(message, str) and message
    problems = body.get("problems", [message])
    assert field is None or field in [p.partition(":")[0] for p in problems], (field, problems)
    return str(message)


def events_json(state: State, **where: Any) -> list[dict[str, Any]]:
    """The log's events as delivered (oldest first)."""
    return [json.loads(e.body) for e in reversed(state.events(limit=10_000, **where))]


def run_invocation(state: State, function: str, *attempts: tuple[float, str | None]) -> str:
    """Run one invocation of ``function`` through the state as the dispatcher does:
    for each attempt (its duration in ms, and its error type or None for success),
    claim it and finish it; an error retries while attempts are left, then fails."""
    event = NewEvent("invoke", "{}", source="reelay.invoke", detail_type=function, target=function)
    _, request_id = state.append_invocation(
        event, function, max_attempts=len(attempts), max_event_age_s=3600
    )
    for number, (duration_ms, error_type) in enumerate(attempts, 1):
        ((claimed, _),) = state.claim(time.time(), 1, only=[request_id])
        assert claimed.attempts == number
        ok = error_type is None
        status = SUCCEEDED if ok else FAILED if number == len(attempts) else QUEUED
        error = None if ok else {"errorType": error_type, "errorMessage": "it broke"}
        attempt = Attempt(
            request_id,
            number,
            function,
            time.time(),
            duration_ms,
            ok,
            error_type,
            None if ok else "it broke",
            "worker-1",
            number == 1,
            64,
            f"attempt {number}\n",
            0,
        )
        result = "null" if ok else None
        state.finish([Outcome(request_id, status, error=error, result=result, attempt=attempt)])
    return request_id


# -- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize("way", ["none", "header", "query", "cookie"])
def test_every_endpoint_refuses_a_request_without_the_right_token(web: Served, way: str) -> None:
    wrong = ("A" if web.token[0] != "A" else "B") + web.token[1:]
    sent = {
        "none": {},
        "header": {"headers": {"Authorization": f"Bearer {wrong}"}},
        "query": {"params": {"token": wrong}},
        "cookie": {"headers": {"Cookie": f"{COOKIE}={wrong}"}},
    }[way]
    before = time.time()
    with web.anonymous() as anonymous:
        for method, url, body in ENDPOINTS:
            response = sound(anonymous.request(method, url, content=body, **sent))
            assert response.status_code == 401, (method, url, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.headers["content-type"] == "application/json"
            assert "token" in response.json()["error"]
            assert "set-cookie" not in response.headers
    after = time.time()

    # Each refusal left an audit event, and nothing else happened: no upload, no event.
    audited = events_json(web.client.state)
    assert [e["source"] for e in audited] == ["reelay.web"] * len(ENDPOINTS)
    assert [e["detail-type"] for e in audited] == ["Unauthorized Request"] * len(ENDPOINTS)
    for (method, url, _), event in zip(ENDPOINTS, audited, strict=True):
        detail = event["detail"]
        assert detail["source_ip"] == "127.0.0.1"
        assert detail["method"] == method
        assert detail["path"] == urlsplit(url).path
        assert before <= detail["time"] <= after
        # ?token= is a browser's sign-in link: a credential on GET requests only.
        ignored = way == "none" or (way == "query" and method != "GET")
        assert detail["reason"] == ("no token" if ignored else "wrong token")
        assert wrong not in json.dumps(event)  # the wrong guess is not kept
    assert web.client.state.events(source="reelay.web", limit=1000)[0].detail_type == (
        "Unauthorized Request"
    )
    with pytest.raises(NoSuchKeyError):
        web.client.head_object("media", "uploads/a.txt")
    assert web.client.state.counts() == dict.fromkeys(STATUSES, 0)


def test_other_schemes_and_near_misses_are_refused(web: Served) -> None:
    basic = base64.b64encode(f"reelay:{web.token}".encode()).decode()
    with web.anonymous() as anonymous:
        for headers, params in [
            ({"Authorization": f"Basic {basic}"}, {}),
            ({"Authorization": f"Basic {web.token}"}, {}),
            ({"Authorization": web.token}, {}),
            ({"Authorization": "Bearer"}, {}),
            ({"Authorization": f"Bearer {web.token[:-1]}"}, {}),
            ({"Authorization": f"Bearer {web.token}x"}, {}),
            ({}, {"token": ""}),
            ({}, {"token": "caf\u00e9"}),  # not ASCII: still just a wrong token
            ({"Cookie": f"{COOKIE}="}, {}),
            ({"Cookie": f"other={web.token}"}, {}),
            # The header decides when present: a right cookie does not rescue it.
            ({"Authorization": "Bearer wrong", "Cookie": f"{COOKIE}={web.token}"}, {}),
        ]:
            response = sound(anonymous.get("/api/titles", headers=headers, params=params))
            assert response.status_code == 401, (headers, params)
            assert response.headers["www-authenticate"] == "Bearer"
        # The scheme is case-insensitive (RFC 9110), the token is not.
        assert (
            anonymous.get("/api/titles", headers={"Authorization": f"bearer {web.token}"}).json()
            == []
        )
        refusal = anonymous.get(
            "/api/titles", headers={"Authorization": f"Bearer {web.token.swapcase()}"}
        )
        assert refusal.status_code == 401
    reasons = [e["detail"]["reason"] for e in events_json(web.client.state, source="reelay.web")]
    assert len(reasons) == 12
    assert set(reasons) == {"no token", "wrong token"}


def test_a_browser_without_the_token_gets_the_login_page(web: Served) -> None:
    with web.anonymous() as anonymous:
        for url, headers in [
            ("/", {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}),
            ("/titles", {"Accept": "text/html"}),
            ("/", {"Accept": "text/html", "Cookie": f"{COOKIE}=stale"}),
        ]:
            response = sound(anonymous.get(url, headers=headers))
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.headers["content-type"].startswith("text/html")
            assert '<form method="post" action="/sign-in">' in response.text
            assert 'name="token"' in response.text
            assert f'name="next" value="{url}"' in response.text
            assert web.token not in response.text
            assert "wrong" not in response.text  # nothing was tried yet
    assert len(web.client.state.events(source="reelay.web", limit=100)) == 3


def sign_in(browser: httpx.Client, origin: str | None = None, **form: str) -> httpx.Response:
    """POST the sign-in form as a browser does (with its Origin header)."""
    headers = {"Accept": "text/html", "Origin": origin or str(browser.base_url).rstrip("/")}
    return sound(browser.post("/sign-in", data=form, headers=headers))


def test_the_sign_in_form_posts_the_token_and_says_when_it_is_wrong(web: Served) -> None:
    with web.anonymous() as browser:
        for form, says in [
            ({"token": "wrong", "next": "/titles"}, "That token is wrong"),
            ({"token": "", "next": "/"}, "Enter the token"),
            ({"next": "/"}, "Enter the token"),
        ]:
            response = sign_in(browser, **form)
            assert response.status_code == 401
            assert response.headers["content-type"].startswith("text/html")
            assert says in response.text
            assert '<form method="post" action="/sign-in">' in response.text
            assert f'name="next" value="{form["next"]}"' in response.text  # kept
            assert "set-cookie" not in response.headers
            assert "wrong" not in response.text.split("<form")[1]  # the guess is not echoed
        reasons = [e["detail"] for e in events_json(web.client.state, source="reelay.web")]
        assert [(d["method"], d["path"], d["reason"]) for d in reasons] == [
            ("POST", "/sign-in", "wrong token"),
            ("POST", "/sign-in", "no token"),
            ("POST", "/sign-in", "no token"),
        ]

        # The right token: a cookie, and back to the page asked for, with a clean URL.
        response = sign_in(browser, token=web.token, next="/titles/t1?tab=qc")
        assert response.status_code == 303
        assert response.headers["location"] == "/titles/t1?tab=qc"
        attributes = [a.strip().lower() for a in response.headers["set-cookie"].split(";")]
        assert attributes[0] == f"{COOKIE}={web.token}".lower()
        assert {"httponly", "samesite=strict", "path=/"} <= set(attributes)
        assert sound(browser.get("/api/titles")).json() == []


def test_the_sign_in_form_refuses_other_sites_and_other_destinations(web: Served) -> None:
    with web.anonymous() as browser:
        # A form on another site posting here (login CSRF) is refused before the token
        # is looked at; SameSite=Strict guards the cookie, this guards the sign-in.
        for origin in ["http://evil.example", "null", web.url.replace("127.0.0.1", "localhost")]:
            response = sign_in(browser, origin, token=web.token, next="/")
            assert response.status_code == 403, origin
            assert "set-cookie" not in response.headers
            assert "another site" in response.text
        # Where to go next stays on this server, whatever the form says.
        for target in ["//evil.example/", "http://evil.example/", "/\\evil.example", "x"]:
            response = sign_in(browser, token=web.token, next=target)
            assert response.status_code == 303
            assert response.headers["location"] == "/"
        # Only a form: a JSON body or an oversized one is no sign-in.
        refused_json = browser.post("/sign-in", json={"token": web.token})
        assert sound(refused_json).status_code == 415
        big = sign_in(browser, token=web.token, next="/" + "a" * 10_000)
        assert big.status_code == 413


def test_the_sign_in_form_carries_the_page_in_the_fragment(web: Served) -> None:
    # The dashboard routes by the fragment (/#/titles/X), which a browser never sends:
    # the form's script appends it to `next`, and the redirect keeps it.
    with web.anonymous() as browser:
        page = sound(browser.get("/", headers={"Accept": "text/html"}))
        (script,) = re.findall(r"<script>(.*?)</script>", page.text, re.S)
        assert "location.hash" in script
        # The page allows its own script and style, by hash, and nothing else.
        policy = dict(
            d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";")
        )
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert policy["script-src"] == f"'sha256-{digest}'"
        assert policy["default-src"] == "'none'"
        assert policy["form-action"] == "'self'" and policy["frame-ancestors"] == "'none'"
        for target in ["/#/titles/t1", "/titles?tab=qc#/x"]:
            response = sign_in(browser, token=web.token, next=target)
            assert response.status_code == 303
            assert response.headers["location"] == target
        wrong = sign_in(browser, token="wrong", next="/#/titles/t1")
        assert 'name="next" value="/#/titles/t1"' in wrong.text  # kept for the next try
        for target in ["/\\evil.example#/x", "//evil.example#/", "#/titles/t1"]:
            assert sign_in(browser, token=web.token, next=target).headers["location"] == "/"


def test_a_wrong_token_in_a_link_says_so(web: Served) -> None:
    with web.anonymous() as browser:
        response = sound(
            browser.get("/", params={"token": "wrong"}, headers={"Accept": "text/html"})
        )
        assert response.status_code == 401
        assert "The token in that link is wrong" in response.text
        assert 'name="next" value="/"' in response.text  # the token is not carried on
        stale = sound(
            browser.get("/", headers={"Accept": "text/html", "Cookie": f"{COOKIE}=stale"})
        )
        assert "no longer valid" in stale.text
        # The form's own address, opened, signs in to the overview.
        form = sound(browser.get("/sign-in", headers={"Accept": "text/html"}))
        assert form.status_code == 401 and 'name="next" value="/"' in form.text


def test_the_token_in_the_url_becomes_a_cookie_and_leaves_the_url(web: Served) -> None:
    with web.anonymous() as browser:
        response = sound(browser.get("/", params={"token": web.token, "tab": "events"}))
        assert response.status_code == 303
        location = urlsplit(response.headers["location"])
        assert location.path == "/"
        assert location.query == "tab=events"
        assert web.token not in response.headers["location"]
        cookie = response.headers["set-cookie"]
        attributes = [a.strip().lower() for a in cookie.split(";")]
        assert attributes[0] == f"{COOKIE}={web.token}".lower()
        assert "httponly" in attributes
        assert "samesite=strict" in attributes
        assert "path=/" in attributes

        # From now on the cookie alone (kept by the client) authenticates.
        page = sound(browser.get("/", headers={"Accept": "text/html"}))
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert sound(browser.get("/api/titles")).json() == []
        assert sound(browser.get("/static/app.js")).status_code == 200

        # A deep link keeps its path.
        deep = sound(browser.get("/titles/t1", params={"token": web.token}))
        assert deep.status_code == 303
        assert urlsplit(deep.headers["location"]).path == "/titles/t1"
    assert web.client.state.events(source="reelay.web") == []


def test_the_token_file_is_owner_only_and_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    token, created = ensure_token(home)
    path = home / TOKEN_FILE
    assert created
    assert len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == token + "\n"

    assert ensure_token(home) == (token, False)

    path.chmod(0o644)  # left readable by a careless copy: narrowed again, token kept
    assert ensure_token(home) == (token, False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    path.write_text("")  # an empty file: a new token, announced as new
    fresh, created = ensure_token(home)
    assert created
    assert fresh != token
    assert path.read_text() == fresh + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- uploads -----------------------------------------------------------------------------


def test_a_large_upload_streams_through_intact(web: Served) -> None:
    size = 64 * MiB
    md5 = hashlib.md5()

    def body() -> Iterator[bytes]:  # made while sent: the test never holds it all either
        for i in range(size // MiB):
            chunk = hashlib.sha256(i.to_bytes(4, "big")).digest() * (MiB // 32)
            md5.update(chunk)
            yield chunk

    response = sound(web.http.put("/api/objects/media/big/clip.bin", content=body()))
    assert response.status_code == 201, response.text
    assert response.json() == {
        "bucket": "media",
        "key": "big/clip.bin",
        "size": size,
        "etag": md5.hexdigest(),
    }
    assert web.client.head_object("media", "big/clip.bin").size == size

    (event,) = events_json(web.client.state, kind="s3")
    (record,) = event["Records"]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "media"
    assert record["s3"]["object"]["key"] == "big/clip.bin"
    assert record["s3"]["object"]["size"] == size
    assert record["s3"]["object"]["eTag"] == md5.hexdigest()
    assert list((web.home / "cache" / "uploads").iterdir()) == []  # the spool is gone


def test_uploads_with_a_bad_body_bucket_or_key_are_refused(web: Served) -> None:
    http = web.http
    refused(http.put("/api/objects/media/empty.txt", content=b""), 422, "body")
    refused(http.put("/api/objects/media/empty.txt"), 422, "body")
    for bucket in ["UPPER", "a", "ab", "b" * 64, "-dash", "dot..dot", "192.168.1.2", "xn--bad"]:
        message = refused(http.put(f"/api/objects/{bucket}/k", content=b"x"), 422, "path.bucket")
        assert repr(bucket) in message
    for key in [
        "%2E%2E/x",  # sent encoded: a client would resolve a literal ../ itself
        "a/%2E%2E/x",
        "a/%2E/x",
        "a//b",
        "a%5Cb",
        "a%00b",
        "",
        "trailing/",
        "k" * 1025,
    ]:
        refused(http.put(f"/api/objects/media/{key}", content=b"x"), 422, "path.key")
    # A line break in the path matches no route at all (Starlette's path pattern stops
    # at it): a JSON 404 rather than a 422, but refused all the same.
    refused(http.put("/api/objects/media/a%0Ab", content=b"x"), 404)
    # An object and a folder of the same name cannot both exist in the file store.
    assert sound(http.put("/api/objects/media/a/b", content=b"x")).status_code == 201
    # That is a conflict with what the store holds (409), not a bad key.
    conflict = sound(http.put("/api/objects/media/a", content=b"x"))
    assert conflict.status_code == 409
    assert "'a'" in conflict.json()["error"]
    too_long = sound(http.put(f"/api/objects/media/{'n' * 256}", content=b"x"))
    assert too_long.status_code == 409
    assert "at most 255 bytes" in too_long.json()["error"]

    # Only the one good upload stored anything or appended an event.
    assert [o.key for o in web.client.list_objects("media")] == ["a/b"]
    assert len(web.client.state.events(kind="s3")) == 1
    assert list((web.home / "cache" / "uploads").iterdir()) == []


def test_a_title_upload_answers_its_title_id(web: Served) -> None:
    response = sound(web.http.post("/api/titles", params={"name": "clip.mp4"}, content=b"0" * 5000))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["bucket"] == "media"
    assert answer["key"] == "ingest/clip.mp4"
    assert answer["size"] == 5000
    assert answer["title_id"] == title_id_for("ingest/clip.mp4", answer["etag"])
    assert web.client.get_object("media", "ingest/clip.mp4") == b"0" * 5000


def test_a_title_upload_needs_a_plain_file_name_and_a_body(web: Served) -> None:
    http = web.http
    refused(http.post("/api/titles", content=b"x"), 422, "query.name")
    for name in ["", "a/b.mp4", "../b.mp4", "/b.mp4", "a\\b.mp4", "n" * 201]:
        message = refused(
            http.post("/api/titles", params={"name": name}, content=b"x"), 422, "query.name"
        )
        assert "got" in message
    refused(http.post("/api/titles", params={"name": "clip.mp4"}, content=b""), 422, "body")
    for name in ["..", ".", "bad\x00.mp4", "bad\n.mp4"]:  # a file name, but not a key
        refused(http.post("/api/titles", params={"name": name}, content=b"x"), 422, "query.name")
    assert list(web.client.list_objects("media")) == []
    assert web.client.state.events() == []


# -- events ------------------------------------------------------------------------------


def test_put_events_appends_entries_to_the_log(web: Served) -> None:
    entries = [
        {"Source": "shop.orders", "DetailType": "Order Placed", "Detail": {"id": 7}},
        {
            "Source": "shop.orders",
            "DetailType": "Order Shipped",
            "Detail": {"id": 7, "carrier": {"name": "post"}},
            "Resources": ["arn:aws:shop:order/7"],
            "Time": "2026-01-31T12:00:00Z",
        },
    ]
    response = sound(web.http.post("/api/events", json={"Entries": entries}))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["FailedEntryCount"] == 0
    ids = [e["EventId"] for e in answer["Entries"]]
    assert len(set(ids)) == 2

    logged = events_json(web.client.state, source="shop.orders")
    assert [e["id"] for e in logged] == ids
    assert [e["detail-type"] for e in logged] == ["Order Placed", "Order Shipped"]
    assert logged[1]["detail"] == {"id": 7, "carrier": {"name": "post"}}
    assert logged[1]["resources"] == ["arn:aws:shop:order/7"]
    assert logged[1]["time"] == "2026-01-31T12:00:00Z"

    listed = sound(web.http.get("/api/events", params={"kind": "event", "limit": 1})).json()
    assert [e["id"] for e in listed] == [ids[1]]
    assert listed[0]["event"]["detail"]["carrier"] == {"name": "post"}


def test_put_events_takes_detail_as_json_text_or_an_object(web: Served) -> None:
    # PutEvents' own form is text holding a JSON object (boto3, the AWS CLI); the
    # object itself is taken too, as by Client.put_events and `reelay emit`.
    details = ['{"id": 7, "tags": ["a"]}', {"id": 7, "tags": ["a"]}, " {} ", {}]
    entries = [{"Source": "shop", "DetailType": "Order", "Detail": d} for d in details]
    response = sound(web.http.post("/api/events", json={"Entries": entries}))
    assert response.status_code == 201, response.text
    logged = events_json(web.client.state, source="shop")
    assert [e["detail"] for e in logged] == [{"id": 7, "tags": ["a"]}] * 2 + [{}] * 2
    message = refused(
        web.http.post("/api/events", json={"Entries": [{**entries[0], "Detail": "[7]"}]}),
        422,
        "body.Entries.0.Detail",
    )
    assert message == "body.Entries.0.Detail: Detail must be a JSON object, not list"
    document = sound(web.http.get("/api/openapi.json")).json()
    entry = document["components"]["schemas"]["EventEntry"]["properties"]["Detail"]
    assert "JSON text" in entry["description"]


ENTRY = {"Source": "s", "DetailType": "d"}


# Broken PutEvents bodies and the field each answer must name.
BROKEN_EVENTS: list[tuple[bytes | Any, str]] = [
    (b"[]", "body"),
    (b'"Entries"', "body"),
    (b"null", "body"),
    ({}, "body.Entries"),
    ({"entries": [ENTRY]}, "body.Entries"),
    ({"Entries": []}, "body.Entries"),
    ({"Entries": [{**ENTRY, "Source": "reelay.media"}]}, "body.Entries.0.Source"),
    ({"Entries": [ENTRY, {**ENTRY, "Source": "aws.s3"}]}, "body.Entries.1.Source"),
    ({"Entries": [ENTRY] * 11}, "body.Entries"),
    ({"Entries": ENTRY}, "body.Entries"),
    ({"Entries": "x"}, "body.Entries"),
    ({"Entries": ["x"]}, "body.Entries.0"),
    ({"Entries": [ENTRY, {"DetailType": "d"}]}, "body.Entries.1.Source"),
    ({"Entries": [{"Source": "s"}]}, "body.Entries.0.DetailType"),
    ({"Entries": [{**ENTRY, "Source": ""}]}, "body.Entries.0.Source"),
    ({"Entries": [{**ENTRY, "Source": 5}]}, "body.Entries.0.Source"),
    ({"Entries": [{**ENTRY, "Source": "s" * 257}]}, "body.Entries.0.Source"),
    ({"Entries": [{**ENTRY, "DetailType": ["d"]}]}, "body.Entries.0.DetailType"),
    ({"Entries": [{**ENTRY, "Detail": "[1, 2]"}]}, "body.Entries.0.Detail"),
    ({"Entries": [{**ENTRY, "Detail": '"text"'}]}, "body.Entries.0.Detail"),
    ({"Entries": [{**ENTRY, "Detail": "{oops"}]}, "body.Entries.0.Detail"),
    ({"Entries": [{**ENTRY, "Detail": ""}]}, "body.Entries.0.Detail"),
    ({"Entries": [{**ENTRY, "Detail": '{"x": NaN}'}]}, "body.Entries.0.Detail"),
    ({"Entries": [{**ENTRY, "Detail": "[" * 5000}]}, "body.Entries.0.Detail"),
    ({"Entries": [{**ENTRY, "Detail": None}]}, "body.Entries.0.Detail"),
    ({"Entries": [{**ENTRY, "Detail": [1, 2]}]}, "body.Entries.0.Detail"),
    ({"Entries": [{**ENTRY, "Detail": 5}]}, "body.Entries.0.Detail"),
    (
        b'{"Entries": [{"Source": "s", "DetailType": "d", "Detail": {"x": NaN}}]}',
        "body.Entries.0.Detail",
    ),
    (
        b'{"Entries": [{"Source": "s", "DetailType": "d", "Detail": {"x": [-Infinity]}}]}',
        "body.Entries.0.Detail",
    ),
    ({"Entries": [{**ENTRY, "Resources": "r"}]}, "body.Entries.0.Resources"),
    ({"Entries": [{**ENTRY, "Resources": ["r", 1]}]}, "body.Entries.0.Resources.1"),
    ({"Entries": [{**ENTRY, "Time": "yesterday"}]}, "body.Entries.0.Time"),
    ({"Entries": [{**ENTRY, "Time": 0}]}, "body.Entries.0.Time"),  # as the Client refuses
    ({"Entries": [{**ENTRY, "Time": "2026-01-31"}]}, "body.Entries.0.Time"),
    ({"Entries": [{**ENTRY, "Time": "2026-01-31T12:00:00"}]}, "body.Entries.0.Time"),  # where?
    ({"Entries": [{**ENTRY, "Time": "2026-02-30T12:00:00Z"}]}, "body.Entries.0.Time"),
    ({"Entries": [{**ENTRY, "Colour": "red"}]}, "body.Entries.0.Colour"),
]


def test_put_events_refuses_a_broken_body(web: Served) -> None:
    wrong = []
    for body, field in BROKEN_EVENTS:  # one server for all: each case costs a request
        if isinstance(body, bytes):
            response = web.http.post(
                "/api/events", content=body, headers={"Content-Type": "application/json"}
            )
        else:
            response = web.http.post("/api/events", json=body)
        try:
            message = refused(response, 422, field)
            # pydantic's "Value error, " is how it files a ValueError, not what was wrong
            assert "Value error" not in message, message
        except AssertionError as exc:
            wrong.append(f"{body!r:.80}: {exc}")
    assert not wrong, "\n".join(wrong)
    assert web.client.state.events() == []  # a batch is taken whole or not at all
    reserved = web.http.post("/api/events", json={"Entries": [{**ENTRY, "Source": "aws.s3"}]})
    assert refused(reserved, 422).startswith("body.Entries.0.Source: sources starting with ")


# Bodies that are not JSON, and where each goes wrong (line, column: 1-based).
NOT_JSON: list[tuple[bytes, str]] = [
    (b"not json", "line 1, column 1"),
    (b'{"Entries": [', "line 1, column 14"),
    (b"{ids", "line 1, column 2"),
    (b'{\n  "ids": ["a",,]\n}', "line 2, column 15"),
    (b"{} {}", "line 1, column 4"),
]


@pytest.mark.parametrize("path", ["/api/events", "/api/dlq/redrive"])
def test_a_body_that_is_not_json_is_a_400_saying_where(web: Served, path: str) -> None:
    json_type = {"Content-Type": "application/json"}
    for body, where in NOT_JSON:
        message = refused(web.http.post(path, content=body, headers=json_type), 400)
        assert message.startswith("body: not JSON ("), message
        assert f" at {where})" in message, (body, message)
        assert "body.1" not in message and "char" not in message  # no position as a field
        response = web.http.post(path, content=body, headers=json_type)
        assert "problems" not in response.json()  # one problem: the body as a whole
    for body in [b"[" * 100_000, b'{"ids": "\xff"}']:  # too deep; not UTF-8
        message = refused(web.http.post(path, content=body, headers=json_type), 400)
        assert message.startswith("body: not JSON (it is ")
    assert web.client.state.events() == []


@pytest.mark.parametrize(
    ("path", "body"), [("/api/events", {"Entries": [ENTRY]}), ("/api/dlq/redrive", {})]
)
def test_a_json_body_needs_its_content_type(web: Served, path: str, body: Any) -> None:
    # A body of another type is refused as such (415, naming the type to send), never
    # read as JSON: a page on another site can post text/plain or form bodies without
    # asking (no CORS preflight), but never application/json.
    text = json.dumps(body).encode()
    for sent in [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]:
        headers = {} if sent is None else {"Content-Type": sent}
        message = refused(web.http.post(path, content=text, headers=headers), 415)
        assert "Content-Type: application/json" in message, message
        assert f"(sent: {sent or 'none'})" in message, message
    for sent in ["application/json", "application/json; charset=utf-8", "application/x+json"]:
        response = sound(web.http.post(path, content=text, headers={"Content-Type": sent}))
        assert response.status_code in (200, 201), (sent, response.text)
    # No body at all: redrive's default (everything), and PutEvents' missing Entries.
    if path == "/api/dlq/redrive":
        assert sound(web.http.post(path)).json() == {"redriven": 0}
    else:
        refused(web.http.post(path), 422, "body")


def test_event_listing_filters_are_checked(web: Served) -> None:
    for params, field in [
        ({"limit": "0"}, "query.limit"),
        ({"limit": "-1"}, "query.limit"),
        ({"limit": "abc"}, "query.limit"),
        ({"limit": "1.5"}, "query.limit"),
        ({"limit": "5000"}, "query.limit"),
        ({"kind": "bogus"}, "query.kind"),
        ({"kind": ""}, "query.kind"),
    ]:
        message = refused(web.http.get("/api/events", params=params), 422, field)
        assert f"(got {json.dumps(params.get('limit', params.get('kind')))})" in message
    both = refused(
        web.http.get("/api/events", params={"kind": "x", "limit": "y"}), 422, "query.kind"
    )
    assert "query.limit" in both
    assert sound(web.http.get("/api/events", params={"limit": "1000", "kind": "s3"})).json() == []


def test_events_are_paged_by_seq(web: Served) -> None:
    entries = [{"Source": "my.app", "DetailType": f"n{i}", "Detail": {"i": i}} for i in range(7)]
    web.client.put_events(entries[:5])
    web.client.put_events(entries[5:])
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    for _ in range(4):  # 3 + 3 + 1, then an empty page
        page = sound(web.http.get("/api/events", params=params)).json()
        seen += [e["seq"] for e in page]
        if not page:
            break
        params["before"] = page[-1]["seq"]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 7
    assert [e["detail_type"] for e in sound(web.http.get("/api/events")).json()] == [
        f"n{i}" for i in reversed(range(7))
    ]
    by_source = web.http.get("/api/events", params={"source": "my.app", "before": seen[1]})
    assert [e["seq"] for e in sound(by_source).json()] == seen[2:]
    for bad in ["0", "-3", "abc", "1.5", str(2**64)]:
        refused(web.http.get("/api/events", params={"before": bad}), 422, "query.before")
    # Any seq >= 1 is a bound, not a lookup (README): past the newest, the newest page;
    # at or below the oldest, an empty one.
    for bound, expected in [(seen[0] + 1, seen), (999_999_999, seen), (seen[-1], [])]:
        page = sound(web.http.get("/api/events", params={"before": bound})).json()
        assert [e["seq"] for e in page] == expected, bound


# -- invocations -------------------------------------------------------------------------


def test_invocation_lookups_and_filters_are_checked(web: Served) -> None:
    http = web.http
    for status in ["bogus", "FAILED", ""]:
        refused(http.get("/api/invocations", params={"status": status}), 422, "query.status")
    refused(http.get("/api/invocations", params={"limit": "0"}), 422, "query.limit")
    refused(http.get("/api/invocations", params={"limit": "1001"}), 422, "query.limit")

    assert refused(http.get("/api/invocations/no-such-id"), 404) == "no invocation 'no-such-id'"
    by_title = http.get("/api/invocations", params={"title": "no-such-title"})
    assert refused(by_title, 404) == "no title 'no-such-title'"

    request_id = run_invocation(web.client.state, "thumb", (5, "Boom"), (8, None))
    detail = sound(http.get(f"/api/invocations/{request_id}")).json()
    assert detail["status"] == "succeeded"
    assert detail["event"]["target"] == "thumb"
    assert [(a["attempt"], a["ok"]) for a in detail["attempt_log"]] == [(1, False), (2, True)]
    listed = sound(
        http.get("/api/invocations", params={"function": "thumb", "status": "succeeded"})
    ).json()
    assert [i["id"] for i in listed] == [request_id]
    assert sound(http.get("/api/invocations", params={"function": "other"})).json() == []


def test_invocations_are_paged_after_an_id(web: Served) -> None:
    state = web.client.state
    ids = [run_invocation(state, "thumb" if i % 2 else "probe", (1, None)) for i in range(7)]
    ids.reverse()  # newest first
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    for _ in range(5):  # 2 + 2 + 2 + 1, then an empty page
        page = sound(web.http.get("/api/invocations", params=params)).json()
        seen += [i["id"] for i in page]
        if not page:
            break
        params["before"] = page[-1]["id"]
    assert seen == ids
    thumbs = [i for i in ids if state.invocation(i).function == "thumb"]
    page = web.http.get("/api/invocations", params={"function": "thumb", "before": thumbs[0]})
    assert [i["id"] for i in sound(page).json()] == thumbs[1:]
    missing = refused(web.http.get("/api/invocations", params={"before": "nope"}), 404)
    assert missing == "query.before: no invocation 'nope'"
    refused(web.http.get("/api/invocations", params={"before": ""}), 422, "query.before")

    # A title's invocations page the same way (in the timeline's order, newest first).
    title = {"id": "t1", "bucket": "media", "key": "ingest/t1.mp4", "etag": "0" * 32}
    change = {"title": title, "status": "PROGRESSING", "stage": "inspect"}
    web.client.put_events([{"Source": SOURCE, "DetailType": STATE_CHANGE, "Detail": change}])
    body = json.dumps({"detail": {"title": title}})
    mine = [
        state.append_invocation(
            NewEvent("invoke", body, source="reelay.invoke", target="encode"),
            "encode",
            max_attempts=1,
            max_event_age_s=60,
        )[1]
        for _ in range(3)
    ]
    listed = [i["id"] for i in sound(web.http.get("/api/invocations?title=t1")).json()]
    assert sorted(listed) == sorted(mine)
    page = web.http.get("/api/invocations", params={"title": "t1", "before": listed[0]})
    assert [i["id"] for i in sound(page).json()] == listed[1:]
    elsewhere = web.http.get("/api/invocations", params={"title": "t1", "before": ids[0]})
    assert "is not in this listing" in refused(elsewhere, 404)


# -- titles ------------------------------------------------------------------------------


def test_title_lookups_and_filters_are_checked(web: Served) -> None:
    http = web.http
    assert refused(http.get("/api/titles/no-such-title"), 404) == "no title 'no-such-title'"
    for status in ["bogus", "PUBLISHED", "succeeded"]:
        message = refused(http.get("/api/titles", params={"status": status}), 422, "query.status")
        assert "'published'" in message  # the valid choices
    for path in ["hls/index.m3u8", "%2E%2E/%2E%2E/api-token", "a//b"]:
        files = http.get(f"/api/titles/no-such-title/files/{path}")
        assert refused(files, 404) == "no title 'no-such-title'"
    assert sound(http.get("/api/titles", params={"status": "published"})).json() == []


# -- the DLQ -----------------------------------------------------------------------------


def test_redrive_refuses_a_broken_body(web: Served) -> None:
    http = web.http
    for body, field in [
        ({"ids": "abc"}, "body.ids"),
        ({"ids": {"a": 1}}, "body.ids"),
        ({"ids": ["a", 1]}, "body.ids.1"),
        ({"ids": [f"id-{i}" for i in range(1001)]}, "body.ids"),
        ({"function": 5}, "body.function"),
        ({"function": ["thumb"]}, "body.function"),
        ([], "body"),
        ("ids", "body"),
    ]:
        refused(http.post("/api/dlq/redrive", json=body), 422, field)
    refused(http.get("/api/dlq", params={"limit": "none"}), 422, "query.limit")


def test_redrive_sends_failed_invocations_back_to_the_queue(web: Served) -> None:
    http = web.http
    state = web.client.state
    assert sound(http.post("/api/dlq/redrive")).json() == {"redriven": 0}
    assert sound(http.post("/api/dlq/redrive", json={})).json() == {"redriven": 0}

    broken = run_invocation(state, "thumb", (5, "Boom"), (7, "Boom"))
    other = run_invocation(state, "probe", (5, "Boom"))
    fine = run_invocation(state, "thumb", (5, None))
    assert [i["id"] for i in sound(http.get("/api/dlq")).json()] == [other, broken]
    assert [i["id"] for i in sound(http.get("/api/dlq", params={"function": "thumb"})).json()] == [
        broken
    ]

    # Ids that are not in the DLQ (unknown, or succeeded) are left alone.
    answer = sound(http.post("/api/dlq/redrive", json={"ids": ["no-such-id", fine]}))
    assert answer.json() == {"redriven": 0}

    assert sound(http.post("/api/dlq/redrive", json={"ids": [broken]})).json() == {"redriven": 1}
    again = state.invocation(broken)
    assert (again.status, again.attempts, again.redrives, again.finished) == (QUEUED, 2, 1, None)
    assert again.not_before <= time.time()
    assert [i["id"] for i in sound(http.get("/api/dlq")).json()] == [other]
    assert state.invocation(fine).status == SUCCEEDED
    # The redriven invocation can be claimed again, with its full retry budget (the
    # attempts before the redrive stay in its history, uncharged).
    ((claimed, _),) = state.claim(time.time(), 10, only=[broken])
    assert (claimed.attempts, claimed.max_attempts) == (3, 2)

    assert sound(http.post("/api/dlq/redrive", json={"function": "probe"})).json() == {
        "redriven": 1
    }
    assert state.invocation(other).status == QUEUED
    assert sound(http.get("/api/dlq")).json() == []


# -- metrics, functions, OpenAPI and unknown paths ---------------------------------------


def test_nodes_are_listed_and_scraped(web: Served) -> None:
    from reelay.state import Node

    now = time.time()
    web.client.state.node_seen(
        [
            Node("dispatcher 1@a", "dispatcher", "a", 1, "0.1.0", now - 60, now - 1),
            Node("7@b", "worker", "b", 7, "0.1.0", now - 30, now),
            Node("9@c", "worker", "c", 9, "0.1.0", now - 7200, now - 7200),
        ]
    )
    listed = sound(web.http.get("/api/nodes")).json()
    assert [n["name"] for n in listed] == ["7@b", "dispatcher 1@a", "9@c"]
    assert listed[0] == {
        "name": "7@b",
        "kind": "worker",
        "host": "b",
        "pid": 7,
        "version": "0.1.0",
        "started": now - 30,
        "seen": now,
    }
    recent = sound(web.http.get("/api/nodes", params={"since_s": 600})).json()
    assert [n["name"] for n in recent] == ["7@b", "dispatcher 1@a"]
    assert "since_s" in refused(web.http.get("/api/nodes", params={"since_s": -1}), 422)
    families = {
        f.name: f for f in text_string_to_metric_families(sound(web.http.get("/metrics")).text)
    }
    seen = {
        s.labels["name"]: s for s in families["reelay_node_last_seen_timestamp_seconds"].samples
    }
    assert seen["7@b"].value == now and seen["7@b"].labels["kind"] == "worker"


def test_metrics_count_real_attempts(web: Served) -> None:
    state = web.client.state
    for ms in (20, 300, 2000):
        run_invocation(state, "thumb", (ms, None))
    run_invocation(state, "thumb", (40, "Boom"), (60, None))  # a retry that succeeds
    run_invocation(state, "thumb", (3000, "Sandbox.Timedout"))
    run_invocation(state, "thumb", (10, "Boom"))
    run_invocation(state, "probe", (5, None))

    response = sound(web.http.get("/metrics"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}

    for family in families.values():
        assert family.name.startswith("reelay_")
        assert family.documentation
        assert "_ms" not in family.name and "milli" not in family.name
        if family.type == "counter":
            assert all(s.name == family.name + "_total" for s in family.samples), family.name
        else:
            assert not family.name.endswith("_total")
        if family.type == "histogram" or "duration" in family.name or "_age" in family.name:
            assert family.name.endswith("_seconds"), family.name

    def value(family: str, sample: str, **labels: str) -> float:
        (found,) = [
            s.value
            for s in families[family].samples
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        return found

    def invocations(function: str, outcome: str) -> float:
        return value(
            "reelay_invocations", "reelay_invocations_total", function=function, outcome=outcome
        )

    assert (invocations("thumb", "success"), invocations("thumb", "error")) == (4, 2)
    assert (invocations("thumb", "timeout"), invocations("probe", "success")) == (1, 1)
    assert len(families["reelay_invocations"].samples) == 4
    assert value("reelay_retries", "reelay_retries_total", function="thumb") == 1
    assert value("reelay_timeouts", "reelay_timeouts_total", function="thumb") == 1
    assert value("reelay_cold_starts", "reelay_cold_starts_total", function="thumb") == 6

    histogram = "reelay_invocation_duration_seconds"
    count = value(histogram, histogram + "_count", function="thumb")
    assert count == 7 == sum(invocations("thumb", o) for o in ("success", "error", "timeout"))
    assert value(histogram, histogram + "_sum", function="thumb") == pytest.approx(5.43)
    assert value(histogram, histogram + "_count", function="probe") == 1
    below = {
        float(s.labels["le"]): s.value
        for s in families[histogram].samples
        if s.name == histogram + "_bucket" and s.labels["function"] == "thumb"
    }
    assert below[0.01] == 1  # 10 ms
    assert below[0.05] == 3  # 10, 20, 40 ms
    assert below[0.1] == 4
    assert below[0.5] == 5
    assert below[2.5] == 6
    assert below[5] == below[float("inf")] == 7
    assert list(below.values()) == sorted(below.values())

    assert value("reelay_dlq_depth", "reelay_dlq_depth", function="thumb") == 2
    assert value("reelay_events", "reelay_events_total", kind="invoke") == 7
    assert value("reelay_queue_depth", "reelay_queue_depth") == 0

    # The functions page counts the same attempts.
    functions = {f["name"]: f for f in sound(web.http.get("/api/functions")).json()}
    assert (functions["thumb"]["invocations"], functions["thumb"]["errors"]) == (7, 3)
    assert (functions["thumb"]["dlq"], functions["thumb"]["handler"]) == (2, None)
    assert functions["probe"]["invocations"] == 1


def test_the_openapi_document_lists_the_api(web: Served) -> None:
    response = sound(web.http.get("/api/openapi.json"))
    assert response.status_code == 200
    document = json.loads(response.text)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "reelay"
    paths = document["paths"]
    for path, method in [
        ("/api/objects/{bucket}/{key}", "put"),
        ("/api/titles", "get"),
        ("/api/titles", "post"),
        ("/api/titles/{title_id}", "get"),
        ("/api/titles/{title_id}/files/{path}", "get"),
        ("/api/functions", "get"),
        ("/api/invocations", "get"),
        ("/api/invocations/{request_id}", "get"),
        ("/api/events", "get"),
        ("/api/events", "post"),
        ("/api/dlq", "get"),
        ("/api/dlq/redrive", "post"),
        ("/api/alerts", "get"),
        ("/api/live", "get"),
        ("/metrics", "get"),
    ]:
        assert method in paths[path], (path, method)
        assert paths[path][method].get("summary") or paths[path][method].get("description")
    assert not [p for p in paths if not p.startswith(("/api/", "/metrics"))]  # no dashboard
    for path, cursor in [("/api/events", "integer"), ("/api/invocations", "string")]:
        (before,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == "before"]
        assert cursor in json.dumps(before["schema"]) and before["description"]


def test_an_unknown_api_path_is_a_json_404_not_the_dashboard(web: Served) -> None:
    for path in [
        "/api",
        "/api/",
        "/api/nope",
        "/api/titles/",
        "/api/titles/a/b",
        "/api/v2/titles",
        "/metrics/extra",
        "/api/openapi.yaml",
    ]:
        for accept in ["application/json", "text/html"]:
            response = sound(web.http.get(path, headers={"Accept": accept}))
            assert response.status_code == 404, (path, response.text[:80])
            assert response.headers["content-type"] == "application/json"
            assert "<html" not in response.text.lower()
            assert path in response.json()["error"]
    assert refused(web.http.get("/static/nope.js"), 404) == "no static file 'nope.js'"
    # Other methods on unknown paths are refused too, as JSON, never served a page.
    for method in ["POST", "PUT", "DELETE"]:
        response = sound(web.http.request(method, "/api/nope", content=b"{}"))
        assert response.status_code in (404, 405)
        assert "error" in response.json()
    assert sound(web.http.get("/titles")).headers["content-type"].startswith("text/html")


def test_malformed_pipeline_events_do_not_hide_or_break_the_listings(web: Served) -> None:
    # The API refuses the pipeline's source, but a buggy handler may still put such
    # events: ones that do not name a whole title are not titles, the real ones stay.
    good = {"id": "t1", "bucket": "media", "key": "ingest/t1.mp4", "etag": "0" * 32}
    details = [
        {"title": good, "status": "PROGRESSING", "stage": "inspect"},
        {"title": "t1"},
        {},
        {"title": {"id": "t1"}},
        {"title": {**good, "bucket": 7}},
        {"title": [good]},
    ]
    entries = [{"Source": SOURCE, "DetailType": STATE_CHANGE, "Detail": d} for d in details]
    refused(web.http.post("/api/events", json={"Entries": entries}), 422, "body.Entries.0.Source")
    web.client.put_events(entries)
    titles = sound(web.http.get("/api/titles")).json()
    assert [(t["id"], t["status"]) for t in titles] == [("t1", "processing")]
    assert sound(web.http.get("/metrics")).status_code == 200
    assert sound(web.http.get("/api/titles/t1")).json()["title"]["stage"] == "inspect"


def test_a_result_that_is_not_strict_json_is_listed_with_nulls(web: Served) -> None:
    # Python's json writes NaN for a handler that returns one; the API answers JSON.
    event = NewEvent("invoke", "{}", source="reelay.invoke", detail_type="f", target="f")
    state = web.client.state
    _, request_id = state.append_invocation(event, "f", max_attempts=1, max_event_age_s=60)
    state.claim(time.time(), 1, only=[request_id])
    state.finish([Outcome(request_id, SUCCEEDED, result='{"score": NaN, "n": Infinity}')])
    listed = sound(web.http.get("/api/invocations")).json()
    assert [i["result"] for i in listed] == [{"score": None, "n": None}]
    one = sound(web.http.get(f"/api/invocations/{request_id}")).json()
    assert one["result"] == {"score": None, "n": None}
    assert sound(web.http.get("/metrics")).status_code == 200


def test_the_api_filters_name_the_same_states_as_the_runtime_and_titles() -> None:
    from typing import get_args

    from reelay.media._web import TitleState
    from reelay.media.titles import STATES
    from reelay.state import STATUSES
    from reelay.web.api import Status

    assert get_args(Status) == STATUSES and get_args(TitleState) == STATES


def test_a_flood_of_refused_requests_is_recorded_as_a_count(tmp_path: Path) -> None:
    from reelay.client import Client
    from reelay.config import Settings
    from reelay.web import Audit, Server, create_app

    with Client(Settings.load(tmp_path / "home")) as client:
        audit = Audit(client, burst=3, window_s=0.5)
        app = create_app(client, "right", audit=audit)
        with Server(app, port=0) as server, httpx.Client(base_url=server.url) as http:
            for i in range(10):
                http.get(f"/api/x{i % 2}", headers={"Authorization": "Bearer wrong"})
            deadline = time.monotonic() + 30  # the server's observer closes the window
            while not client.state.events(source="reelay.web", limit=100)[0].detail_type.endswith(
                "Suppressed"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            for _ in range(5):  # a new window: its count is recorded when the server stops
                http.get("/metrics")
        audited = events_json(client.state, source="reelay.web")
    one, many = "Unauthorized Request", "Unauthorized Requests Suppressed"
    assert [e["detail-type"] for e in audited] == [one] * 3 + [many] + [one] * 3 + [many]
    assert audited[-1]["detail"]["count"] == 2
    assert audited[-1]["detail"]["paths"] == ["/metrics"]
    summary = audited[3]["detail"]
    assert summary["source_ip"] == "127.0.0.1" and summary["count"] == 7
    assert summary["paths"] == ["/api/x0", "/api/x1"] and summary["reasons"] == {"wrong token": 7}
    assert summary["first"] <= summary["last"]
