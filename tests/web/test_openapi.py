"""The served OpenAPI document describes the API the server keeps: how to authenticate,
every error answer and its shape, upload bodies (streamed bytes), the live stream's
media type, which methods a path takes; and schemathesis, run against it with every
check, finds nothing the server does that the document does not say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reelay.errors import InvalidKeyError
from reelay.media.config import SOURCE
from reelay.media.titles import STATE_CHANGE
from reelay.state import STATUSES
from reelay.storage import validate_bucket, validate_key
from reelay.web import _openapi

from .conftest import Served
from .test_api import refused, run_invocation, sound


def document(web: Served) -> dict[str, Any]:
    response = sound(web.http.get("/api/openapi.json"))
    assert response.status_code == 200
    return dict(response.json())


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, ops in doc["paths"].items() for m, op in ops.items()]


def test_the_document_says_how_to_authenticate_and_what_every_error_looks_like(
    api: Served,
) -> None:
    doc = document(api)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["cookie"]["in"] == "cookie" and schemes["cookie"]["name"] == "reelay_token"
    assert doc["security"] == [{"bearer": []}, {"cookie": []}]

    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["Problem"]["required"] == ["error"]
    assert set(schemas["Invalid"]["required"]) == {"error", "problems"}
    problem, invalid = ({"$ref": f"#/components/schemas/{n}"} for n in ("Problem", "Invalid"))
    for path, method, op in operations(doc):
        answers = op["responses"]
        assert "401" in answers, (path, method)
        assert answers["401"]["headers"]["WWW-Authenticate"]
        for code, answer in answers.items():
            if code.startswith("4"):
                expected = invalid if code == "422" else problem
                assert answer["content"] == {"application/json": {"schema": expected}}, (
                    path,
                    method,
                    code,
                )
        # 422 wherever the server validates something, and only there
        validates = bool(op.get("parameters") or op.get("requestBody"))
        assert ("422" in answers) == validates, (path, method)
        # No path takes every method: each says what the others get, and the header
        assert answers["405"]["headers"]["Allow"]["schema"] == {"type": "string"}, (path, method)
        # A JSON body sent as something else is a 415, wherever a body is JSON
        takes_json = "application/json" in op.get("requestBody", {}).get("content", {})
        assert ("415" in answers) == takes_json, (path, method)
        if takes_json:
            assert "Content-Type: application/json" in answers["415"]["description"]
    for path, method, code in [
        ("/api/titles/{title_id}", "get", "404"),
        ("/api/titles/{title_id}/files/{path}", "get", "404"),
        ("/api/invocations/{request_id}", "get", "404"),
        ("/api/invocations", "get", "404"),  # an unknown title or cursor
        ("/api/events", "post", "400"),  # a body that is not JSON
        ("/api/dlq/redrive", "post", "400"),
        ("/api/events", "post", "415"),  # a body sent as another type
        ("/api/dlq/redrive", "post", "415"),
        ("/api/objects/{bucket}/{key}", "put", "409"),
        ("/api/titles", "post", "409"),
    ]:
        assert code in doc["paths"][path][method]["responses"], (path, method, code)
    assert "405" in doc["info"]["description"] and "Allow" in doc["info"]["description"]


def test_the_document_gives_bodies_streams_and_filters_their_real_types(api: Served) -> None:
    doc = document(api)
    paths = doc["paths"]
    for path, method in [("/api/objects/{bucket}/{key}", "put"), ("/api/titles", "post")]:
        body = paths[path][method]["requestBody"]
        assert body["required"] is True
        schema = body["content"]["application/octet-stream"]["schema"]
        assert schema["type"] == "string" and schema["format"] == "binary"
    live = paths["/api/live"]["get"]["responses"]["200"]["content"]
    assert list(live) == ["text/event-stream"]
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    files = paths["/api/titles/{title_id}/files/{path}"]["get"]["responses"]["200"]["content"]
    assert {"application/vnd.apple.mpegurl", "video/iso.segment", "text/vtt"} <= set(files)
    (status,) = [p for p in paths["/api/invocations"]["get"]["parameters"] if p["name"] == "status"]
    assert status["schema"]["anyOf"][0]["enum"] == list(STATUSES)  # "claimed" included
    links = paths["/api/titles"]["post"]["responses"]["201"]["links"]
    assert links["GetTitle"]["operationRef"] == "#/paths/~1api~1titles~1{title_id}/get"


def test_the_name_patterns_say_what_the_validators_check() -> None:
    import re

    def agree(pattern: str, check: Any, value: str) -> bool:
        try:
            check(value)
            valid = True
        except InvalidKeyError:
            valid = False
        return (re.fullmatch(pattern, value) is not None) == valid

    buckets = ["media", "a.b-c", "abc", "a" * 63, "a" * 64, "ab", "Media", "-ab", "ab-"]
    buckets += ["a..b", "192.168.1.1", "192.168.1.a", "xn--ab", "ab-s3alias", "ab.mrap", "a_b"]
    buckets += ["ab--ol-s3", "sthree-x", "amzn-s3-demo-x", "1.2.3", "a.-b"]
    for bucket in buckets:
        assert agree(_openapi.BUCKET, validate_bucket, bucket), bucket
    keys = ["a", "a/b", "a b/c.mp4", "caf\u00e9/\u6f22", "..a", "a..", ".x/y", "a/.b"]
    keys += ["", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "a/..", "./a"]
    keys += ["a\\b", "a\x00b", "a\nb", "a\x7fb", "a\x85b", "a\tb", "\u00a0"]
    for key in keys:
        assert agree(_openapi.KEY, validate_key, key), key


def test_a_path_answers_which_methods_it_takes(web: Served) -> None:
    http = web.http
    for path, methods in [
        ("/api/titles", "GET, POST, OPTIONS"),
        ("/api/events", "GET, POST, OPTIONS"),
        ("/api/dlq/redrive", "POST, OPTIONS"),
        ("/api/objects/media/a/b.txt", "PUT, OPTIONS"),
        ("/metrics", "GET, OPTIONS"),
        ("/titles", "GET, OPTIONS"),
    ]:
        response = sound(http.options(path))
        assert response.status_code == 204, (path, response.text)
        assert response.headers["allow"] == methods, path
    refused(http.options("/api/nope"), 404)

    for method, path, allow in [
        ("GET", "/api/dlq/redrive", "POST, OPTIONS"),  # was a 404: the dashboard took it
        ("DELETE", "/api/titles", "GET, POST, OPTIONS"),
        ("PUT", "/api/titles", "GET, POST, OPTIONS"),
        ("GET", "/api/objects/media/a.txt", "PUT, OPTIONS"),
        ("POST", "/api/invocations/x", "GET, OPTIONS"),
        ("POST", "/titles", "GET, OPTIONS"),
    ]:
        message = refused(http.request(method, path, content=b"{}"), 405)
        assert message.startswith(f"{method} is not allowed on {path}; it takes ")
        assert http.request(method, path).headers["allow"] == allow, (method, path)
    for method in ["GET", "POST", "DELETE"]:  # no such path, whatever the method
        refused(http.request(method, "/api/dlq/nope"), 404)


def test_every_error_has_the_one_shape(web: Served) -> None:
    http = web.http
    headers = {"Content-Type": "application/json"}
    for body in [b'{"Entries": "\xff"}', b"[" * 100_000]:
        message = refused(http.post("/api/events", content=body, headers=headers), 400)
        assert message.startswith("body: not JSON (it is ")
    invalid = refused(http.put("/api/objects/media/a", content=b""), 422, "body")
    assert invalid == "body: the upload is empty"
    assert http.put("/api/objects/media/a", content=b"").json()["problems"] == [invalid]
    seed(web)
    name = "n" * 300  # a key the file store cannot hold (255 bytes between slashes at most)
    missing = http.get(f"/api/titles/t1/files/{name}")
    assert refused(missing, 404) == f"no file {name!r} in title 't1'"


# -- schemathesis ----------------------------------------------------------------------


def seed(web: Served) -> None:
    """Something for the lookups to find: invocations (one in the DLQ) and a title."""
    state = web.client.state
    run_invocation(state, "thumb", (5, None))
    run_invocation(state, "thumb", (5, "Boom"))
    title = {"id": "t1", "bucket": "media", "key": "ingest/t1.mp4", "etag": "0" * 32}
    change = {"title": title, "status": "PROGRESSING", "stage": "inspect"}
    web.client.put_events([{"Source": SOURCE, "DetailType": STATE_CHANGE, "Detail": change}])


@pytest.mark.slow
def test_schemathesis_finds_no_failure_with_every_check(web: Served, tmp_path: Path) -> None:
    """The goal CI checks (README: "The HTTP API"): `schemathesis run --checks all`
    against the served document, every operation but the never-ending live stream,
    a fixed seed and number of examples, against this real server and token."""
    seed(web)
    # SQL is a language the schema cannot describe: a well-formed query of SQL that
    # DuckDB refuses is a 400 (with DuckDB's message), not a server error.
    (tmp_path / "schemathesis.toml").write_text(
        '[[operations]]\ninclude-path = "/api/analytics/query"\n'
        'checks.positive_data_acceptance.expected-statuses = ["2xx", "400"]\n'
    )
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{web.url}/api/openapi.json"]
    command += ["--header", f"Authorization: Bearer {web.token}", "--checks", "all"]
    command += ["--exclude-path", "/api/live", "--max-examples", "25", "--seed", "1"]
    command += ["--workers", "1", "--request-timeout", "30", "--generation-database", "none"]
    command += ["--no-color"]
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "Tested: 17" in report, report  # every operation but /api/live
    for phase in ["Coverage", "Fuzzing", "Stateful"]:
        assert f"✅ {phase}" in report, report
